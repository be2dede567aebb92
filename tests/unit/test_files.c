#include <string.h>

#include "disposition.h"
#include "sniff.h"
#include "tap.h"
#include "validate.h"

#define SNIFF(bytes, name) sniff_type((const unsigned char *)(bytes), sizeof(bytes) - 1, name)

int main(void) {
  ok(!strcmp(SNIFF("%PDF-1.7\n", "a.pdf"), "application/pdf"), "PDF");
  ok(!strcmp(SNIFF("\xFF\xD8\xFF\xE0\0\x10JFIF", "a.jpg"), "image/jpeg"), "JPEG");
  ok(!strcmp(SNIFF("\x89PNG\r\n\x1a\n\0\0", NULL), "image/png"), "PNG");
  ok(!strcmp(SNIFF("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", "报表.xls"), "application/vnd.ms-excel"), "legacy Excel");
  ok(!strcmp(SNIFF("PK\x03\x04....[Content_Types].xml....word/document.xml", "x.docx"),
             "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
     "docx");
  ok(SNIFF("PK\x03\x04....payload.exe", "x.docx") == NULL, "another zip is refused");
  ok(SNIFF("\x7f" "ELF\x02\x01\x01", "x.pdf") == NULL, "an ELF executable named .pdf is refused");
  ok(SNIFF("MZ\x90\0\x03\0\0\0", "x.pdf") == NULL, "a Windows executable is refused");
  ok(SNIFF("#!/bin/sh\nrm -rf /\n", "a.txt") == NULL, "a script is refused");
  ok(!strcmp(SNIFF("整改情况说明\n第一条", "a.txt"), "text/plain; charset=utf-8"), "UTF-8 text");
  ok(SNIFF("\xC4\xE3\xBA\xC3", "gbk.txt") == NULL, "text that is not UTF-8 is refused");

  char name[512];
  ok(disposition_filename("attachment; filename*=UTF-8''%E5%88%B6%E5%BA%A6.pdf; filename=\"x.pdf\"", name, sizeof name) &&
         !strcmp(name, "制度.pdf"),
     "filename* wins: %s", name);
  ok(disposition_filename("attachment; filename=\"a \\\"b\\\".pdf\"", name, sizeof name) && !strcmp(name, "a b.pdf"),
     "quoted names are unescaped, quotes dropped: %s", name);
  ok(disposition_filename("attachment; filename=\"../../etc/passwd\"", name, sizeof name) && !strcmp(name, "passwd"),
     "paths are cut to the base name: %s", name);
  ok(!disposition_filename("attachment", name, sizeof name) && !disposition_filename(NULL, name, sizeof name),
     "no name, no file name");
  ok(!disposition_filename("attachment; filename*=UTF-8''%FF%FE", name, sizeof name), "invalid UTF-8 refused");
  char header[1100];
  disposition_attachment("整改 报告.pdf", header, sizeof header);
  ok(!strcmp(header, "attachment; filename=\"__ __.pdf\"; filename*=UTF-8''%E6%95%B4%E6%94%B9%20%E6%8A%A5%E5%91%8A.pdf"),
     "download header: %s", header);

  char t1[] = "2026-11-26T08:00:00Z", t2[] = "2026-11-26T08:00:00.123456 08:00", t3[] = "2026-11-26 08:00:00Z",
       t4[] = "2026-02-30T08:00:00Z";
  ok(time_valid(t1) && time_valid(t2) && !strcmp(t2, "2026-11-26T08:00:00.123456+08:00") && !time_valid(t3) &&
         !time_valid(t4),
     "RFC 3339 times (an unencoded '+' mended)");
  return done_testing();
}
