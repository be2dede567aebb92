#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yder.h>

/* A line longer than this is cut (its message shortened): a line goes out in one write(2). */
#define LINE_MAX_BYTES 8192

static struct {
  int json;
  unsigned long level;
} L = {1, Y_LOG_LEVEL_INFO};

static _Thread_local const char *current_request;

void log_set_request(const char *request_id) { current_request = request_id; }

static unsigned long level_of(const char *name) {
  if (!strcmp(name, "error"))
    return Y_LOG_LEVEL_ERROR;
  if (!strcmp(name, "warning"))
    return Y_LOG_LEVEL_WARNING;
  if (!strcmp(name, "debug"))
    return Y_LOG_LEVEL_DEBUG;
  return Y_LOG_LEVEL_INFO;
}

static const char *level_name(unsigned long level, int upper) {
  switch (level) {
  case Y_LOG_LEVEL_ERROR:
    return upper ? "ERROR" : "error";
  case Y_LOG_LEVEL_WARNING:
    return upper ? "WARNING" : "warning";
  case Y_LOG_LEVEL_DEBUG:
    return upper ? "DEBUG" : "debug";
  default:
    return upper ? "INFO" : "info";
  }
}

/* A line being built in a fixed buffer; what does not fit is dropped (out.full). */
struct line {
  char s[LINE_MAX_BYTES];
  size_t len;
  int full;
};

static void put(struct line *l, const char *p, size_t n) {
  if (l->len + n + 2 > sizeof l->s) { /* room for the newline kept */
    n = sizeof l->s - 2 - l->len;
    l->full = 1;
  }
  memcpy(l->s + l->len, p, n);
  l->len += n;
}

static void puts_(struct line *l, const char *p) { put(l, p, strlen(p)); }

static void printf_(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(struct line *l, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0)
    put(l, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 when it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
  size_t len = p[0] < 0x80 ? 1 : (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
  if (!len || len > n || (len == 2 && p[0] < 0xC2))
    return 0;
  for (size_t i = 1; i < len; i++)
    if ((p[i] & 0xC0) != 0x80)
      return 0;
  if (len == 3 && ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0)))
    return 0; /* overlong, or a surrogate */
  if (len == 4 && ((p[0] == 0xF0 && p[1] < 0x90) || p[0] > 0xF4 || (p[0] == 0xF4 && p[1] >= 0x90)))
    return 0;
  return len;
}

/* s as a JSON string, quotes included; bytes that are not UTF-8 become U+FFFD. */
static void put_json_string(struct line *l, const char *s) {
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  size_t n = strlen((const char *)p);
  put(l, "\"", 1);
  while (n && !l->full) {
    size_t run = 0; /* bytes to copy as they are */
    while (run < n && p[run] >= 0x20 && p[run] != '"' && p[run] != '\\') {
      size_t k = p[run] < 0x80 ? 1 : utf8_seq(p + run, n - run);
      if (!k)
        break;
      run += k;
    }
    put(l, (const char *)p, run);
    p += run, n -= run;
    if (!n)
      break;
    if (*p == '"' || *p == '\\') {
      char esc[2] = {'\\', (char)*p};
      put(l, esc, 2);
    } else if (*p == '\n') {
      put(l, "\\n", 2);
    } else if (*p == '\t') {
      put(l, "\\t", 2);
    } else if (*p < 0x20) {
      printf_(l, "\\u%04x", *p);
    } else {
      put(l, "\\ufffd", 6); /* not UTF-8 */
    }
    p++, n--;
  }
  put(l, "\"", 1);
}

static void put_time(struct line *l, int millis) {
  struct timespec ts;
  struct tm tm;
  char buf[40];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  if (millis)
    snprintf(buf + n, sizeof buf - n, ".%03ldZ", ts.tv_nsec / 1000000);
  else
    snprintf(buf + n, sizeof buf - n, "Z");
  puts_(l, buf);
}

/* Starts a line: {"time":"...","level":"..." in JSON, "TIME - ducha LEVEL: " in text. */
static void begin(struct line *l, unsigned long level) {
  l->len = 0;
  l->full = 0;
  if (L.json) {
    puts_(l, "{\"time\":\"");
    put_time(l, 1);
    printf_(l, "\",\"level\":\"%s\"", level_name(level, 0));
  } else {
    put_time(l, 0);
    printf_(l, " - ducha %s: ", level_name(level, 1));
  }
}

static void field(struct line *l, const char *name, const char *value) {
  printf_(l, ",\"%s\":", name);
  put_json_string(l, value);
}

static void end(struct line *l) {
  if (L.json)
    puts_(l, "}");
  l->s[l->len++] = '\n';
  ssize_t off = 0;
  while (off < (ssize_t)l->len) {
    ssize_t n = write(STDERR_FILENO, l->s + off, l->len - (size_t)off);
    if (n <= 0)
      break;
    off += n;
  }
}

static void on_message(void *cls, const char *app, const time_t date, const unsigned long level, const char *message) {
  (void)cls, (void)app, (void)date;
  struct line l;
  begin(&l, level);
  if (L.json) {
    field(&l, "msg", message);
    if (current_request)
      field(&l, "request_id", current_request);
  } else {
    puts_(&l, message ? message : "");
    if (current_request)
      printf_(&l, " request_id=%s", current_request);
  }
  end(&l);
}

void log_open(const struct config *cfg) {
  L.level = level_of(cfg->log_level);
  L.json = !strcmp(cfg->log_format, "json") || (strcmp(cfg->log_format, "text") && !isatty(STDERR_FILENO));
  y_init_logs("ducha", Y_LOG_MODE_CALLBACK, L.level, NULL, NULL);
  y_set_logs_callback(on_message, NULL, "starting");
}

void log_close(void) { y_close_logs(); }

void log_request(const struct log_request *r) {
  unsigned long level = r->status >= 500 ? Y_LOG_LEVEL_WARNING : Y_LOG_LEVEL_INFO;
  if (level > L.level)
    return;
  struct line l;
  begin(&l, level);
  if (L.json) {
    field(&l, "msg", "request");
    field(&l, "request_id", r->request_id);
    field(&l, "method", r->method);
    if (r->route)
      field(&l, "route", r->route);
    else
      puts_(&l, ",\"route\":null");
    field(&l, "path", r->path);
    printf_(&l, ",\"status\":%ld,\"duration_ms\":%.3f", r->status, r->ms);
    if (r->user_id)
      printf_(&l, ",\"user_id\":%" PRId64, r->user_id);
    else
      puts_(&l, ",\"user_id\":null");
  } else {
    printf_(&l, "%s ", r->method);
    puts_(&l, r->path);
    printf_(&l, " %ld %.1fms request_id=%s", r->status, r->ms, r->request_id);
    if (r->user_id)
      printf_(&l, " user_id=%" PRId64, r->user_id);
  }
  end(&l);
}

void log_request_error(const struct log_request *r, const char *problem_type, const char *detail) {
  struct line l;
  begin(&l, Y_LOG_LEVEL_ERROR);
  if (L.json) {
    field(&l, "msg", detail);
    field(&l, "request_id", r->request_id);
    field(&l, "method", r->method);
    if (r->route)
      field(&l, "route", r->route);
    printf_(&l, ",\"status\":%ld", r->status);
    field(&l, "problem", problem_type);
  } else {
    printf_(&l, "%s ", r->method);
    puts_(&l, r->path);
    printf_(&l, " %ld %s: ", r->status, problem_type);
    puts_(&l, detail);
    printf_(&l, " request_id=%s", r->request_id);
  }
  end(&l);
}
