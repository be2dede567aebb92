/* /docs: the API on a page for people. Swagger UI (npm swagger-ui-dist, the version pinned in
 * docs/package.json, installed by scripts/lib.sh) renders /openapi.yaml; its two files are read
 * from DUCHA_DOCS_DIR at start-up, mapped (file pages, shared with the page cache: the server's
 * private memory stays as it was) and served from there, with the page and its start-up script,
 * so a browser loads nothing from anywhere else (the page's Content-Security-Policy says so too:
 * R_PAGE in http.c). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "resources.h"

static const char PAGE[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>ducha API</title>\n"
    "<link rel=\"stylesheet\" href=\"/docs/swagger-ui.css\">\n"
    "</head>\n"
    "<body>\n"
    "<div id=\"swagger-ui\"></div>\n"
    "<script src=\"/docs/swagger-ui-bundle.js\"></script>\n"
    "<script src=\"/docs/ducha-docs.js\"></script>\n"
    "</body>\n"
    "</html>\n";

/* Swagger UI's options: the contract of this server, every tag open, no validator badge (it
 * would send the contract to a service elsewhere). */
static const char START[] =
    "window.addEventListener('load', function () {\n"
    "  window.ui = SwaggerUIBundle({\n"
    "    url: '/openapi.yaml',\n"
    "    dom_id: '#swagger-ui',\n"
    "    deepLinking: true,\n"
    "    docExpansion: 'list',\n"
    "    defaultModelsExpandDepth: -1,\n"
    "    displayOperationId: true,\n"
    "    filter: true,\n"
    "    validatorUrl: null\n"
    "  });\n"
    "});\n";

static struct asset {
  const char *name;
  const char *type;
  char *data; /* mapped at start-up; NULL when missing */
  size_t len;
} ASSETS[] = {
  {"swagger-ui-bundle.js", "text/javascript; charset=utf-8", NULL, 0},
  {"swagger-ui.css", "text/css; charset=utf-8", NULL, 0},
};
#define NASSETS (sizeof ASSETS / sizeof ASSETS[0])

static int map_file(const char *path, char **data, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  struct stat st;
  void *p = fstat(fd, &st) == 0 && st.st_size > 0
                ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0)
                : MAP_FAILED;
  close(fd);
  if (p == MAP_FAILED)
    return -1;
  *data = p;
  *len = (size_t)st.st_size;
  return 0;
}

int docs_load(const char *dir) {
  char path[1024];
  int rc = 0;
  for (size_t i = 0; i < NASSETS; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, ASSETS[i].name);
    if (map_file(path, &ASSETS[i].data, &ASSETS[i].len))
      rc = -1;
  }
  if (rc)
    docs_unload();
  return rc;
}

void docs_unload(void) {
  for (size_t i = 0; i < NASSETS; i++) {
    if (ASSETS[i].data)
      munmap(ASSETS[i].data, ASSETS[i].len);
    ASSETS[i].data = NULL;
  }
}

status docs_page(struct call *c) {
  if (!ASSETS[0].data)
    return fail(c, ST_NOT_FOUND, "the page's files were not found at start-up (DUCHA_DOCS_DIR; scripts/run installs them)");
  c->raw = PAGE;
  c->raw_len = sizeof PAGE - 1;
  c->raw_type = "text/html; charset=utf-8";
  return ST_OK;
}

status docs_file(struct call *c) {
  const char *name = strrchr(c->path, '/') + 1; /* the route is /docs/{file} */
  if (!strcmp(name, "ducha-docs.js")) {
    c->raw = START;
    c->raw_len = sizeof START - 1;
    c->raw_type = "text/javascript; charset=utf-8";
    return ST_OK;
  }
  for (size_t i = 0; i < NASSETS; i++)
    if (!strcmp(name, ASSETS[i].name) && ASSETS[i].data) {
      c->raw = ASSETS[i].data;
      c->raw_len = ASSETS[i].len;
      c->raw_type = ASSETS[i].type;
      return ST_OK;
    }
  return fail(c, ST_NOT_FOUND, "no such file of the page /docs");
}
