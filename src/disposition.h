/* Content-Disposition (RFC 6266) file names, both ways, with RFC 5987 filename* for Chinese
 * names. */
#ifndef DUCHA_DISPOSITION_H
#define DUCHA_DISPOSITION_H

#include <stddef.h>

/* The file name a Content-Disposition header gives (filename* preferred), cleaned; 0 when it
 * gives none or an unreadable one. */
int disposition_filename(const char *header, char *out, size_t size);
/* Makes name safe to keep: its base name only, valid UTF-8, no control characters, at most
 * 255 characters; "upload" when nothing is left. In place. */
void filename_clean(char *name, size_t size);
/* The header for a download of name: attachment; filename="ascii"; filename*=UTF-8''... */
void disposition_attachment(const char *name, char *out, size_t size);

#endif
