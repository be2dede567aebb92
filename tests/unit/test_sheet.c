/* sheet.c (reading XLSX and CSV within limits, writing CSV) and zipstream.c (a zip written as it
 * is read), on their own: no server, no database. XLSX files are made with libxlsxwriter and zips
 * are read back with libzip, both independent of the code under test. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xlsxwriter.h>
#include <zip.h>

#include "sheet.h"
#include "tap.h"
#include "text.h"
#include "zipstream.h"

static const struct sheet_limits LIMITS = {100, 16, 1 << 20, 4096, 100};

static enum sheet_status read_text(const char *text, struct sheet *s) { return sheet_read(text, strlen(text), &LIMITS, s); }

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = malloc(1 << 20);
  *len = f && buf ? fread(buf, 1, 1 << 20, f) : 0;
  if (f)
    fclose(f);
  return buf;
}

/* A workbook written by libxlsxwriter: a merged title, text with a line break, a number. */
static char *xlsx(int constant_memory, size_t *len) {
  char path[] = "/tmp/ducha-test-sheet-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  lxw_workbook_options opt = {.constant_memory = (uint8_t)constant_memory, .tmpdir = (char *)"/tmp"};
  lxw_workbook *wb = workbook_new_opt(path, &opt);
  lxw_worksheet *ws = workbook_add_worksheet(wb, "督察表");
  worksheet_merge_range(ws, 0, 0, 0, 3, "全面推进政务公开工作督察表", NULL);
  worksheet_write_string(ws, 2, 0, "序号", NULL);
  worksheet_write_string(ws, 2, 2, "存在问题", NULL);
  worksheet_write_number(ws, 3, 0, 12, NULL);
  worksheet_write_string(ws, 3, 2, "1. 第一行\n2. 第二行 & <尖括号>", NULL);
  workbook_close(wb);
  char *data = slurp(path, len);
  unlink(path);
  return data;
}

static long from_memory(void *entry, uint64_t at, char *out, size_t max) {
  memcpy(out, (const char *)entry + at, max);
  return (long)max;
}

int main(void) {
  struct sheet s;

  ok(read_text("序号,工作任务\r\n1,\"带,逗号\n和换行的\"\"引号\"\"\"\r\n\r\n2,x", &s) == SHEET_OK && s.nrows == 3,
     "CSV: three rows with a value (a blank record is dropped)");
  ok(!strcmp(sheet_cell(&s, 1, 1), "带,逗号\n和换行的\"引号\"") && s.rows[1].number == 2 && s.rows[2].number == 4,
     "a quoted cell keeps commas, line breaks and quotes; rows keep their numbers");
  ok(!strcmp(sheet_cell(&s, 0, 5), "") && !strcmp(s.format, "csv") && !strcmp(s.encoding, "UTF-8"),
     "a cell past the row is empty");
  sheet_free(&s);
  ok(read_text("\xEF\xBB\xBF序号\n1", &s) == SHEET_OK && !strcmp(sheet_cell(&s, 0, 0), "序号"), "a BOM is dropped");
  sheet_free(&s);
  ok(read_text("\xD0\xF2\xBA\xC5,\xB9\xA4\xD7\xF7\xC8\xCE\xCE\xF1\r\n", &s) == SHEET_OK &&
         !strcmp(s.encoding, "GB18030") && !strcmp(sheet_cell(&s, 0, 1), "工作任务"),
     "GB18030 is converted: %s", sheet_cell(&s, 0, 1));
  sheet_free(&s);
  ok(read_text("a,\"never closed\n", &s) == SHEET_MALFORMED, "an unclosed quote: %s", s.why);
  sheet_free(&s);
  ok(sheet_read("", 0, &LIMITS, &s) == SHEET_MALFORMED, "empty: %s", s.why);
  sheet_free(&s);
  ok(sheet_read("a\0b", 3, &LIMITS, &s) == SHEET_NOT_A_SHEET, "binary: %s", s.why);
  sheet_free(&s);
  ok(read_text("\xFF\xFE\x41\x00", &s) == SHEET_NOT_A_SHEET, "UTF-16: %s", s.why);
  sheet_free(&s);
  ok(read_text("%PDF-1.4\n", &s) == SHEET_NOT_A_SHEET, "a PDF: %s", s.why);
  sheet_free(&s);
  ok(read_text("\x81\x30\xFF\xFF", &s) == SHEET_NOT_A_SHEET, "neither UTF-8 nor GB18030: %s", s.why);
  sheet_free(&s);

  struct text many = {0};
  for (int i = 0; i < 200; i++)
    text_put(&many, "1,x\n");
  ok(read_text(many.s, &s) == SHEET_TOO_BIG && s.nrows == 100, "rows past the limit: %s", s.why);
  sheet_free(&s);
  free(text_take(&many, NULL));
  char *wide = malloc(5000);
  memset(wide, 'x', 4999);
  wide[4999] = '\0';
  ok(read_text(wide, &s) == SHEET_TOO_BIG, "a cell past the limit: %s", s.why);
  sheet_free(&s);
  free(wide);

  struct text out = {0};
  const char *cells[] = {"=SUM(A1)", "普通", "a\"b", NULL, "-1"};
  csv_record(&out, cells, 5);
  ok(!strcmp(out.s, "\"'=SUM(A1)\",普通,\"a\"\"b\",,\"'-1\"\r\n"), "csv_record quotes and guards formulas");
  ok(read_text(out.s, &s) == SHEET_OK && !strcmp(sheet_cell(&s, 0, 0), "=SUM(A1)") && !strcmp(sheet_cell(&s, 0, 4), "-1"),
     "and reading takes the guard off");
  sheet_free(&s);
  free(text_take(&out, NULL));

  for (int mode = 0; mode < 2; mode++) {
    size_t len;
    char *data = xlsx(mode, &len);
    ok(sheet_read(data, len, &LIMITS, &s) == SHEET_OK && s.nrows == 3 && !strcmp(s.format, "xlsx"),
       "XLSX (%s strings): rows with a value", mode ? "inline" : "shared");
    ok(!strcmp(sheet_cell(&s, 0, 0), "全面推进政务公开工作督察表") && s.rows[1].number == 3 &&
           !strcmp(sheet_cell(&s, 2, 0), "12") && !strcmp(sheet_cell(&s, 2, 2), "1. 第一行\n2. 第二行 & <尖括号>") &&
           !strcmp(sheet_cell(&s, 2, 1), ""),
       "cells, numbers and escaped text come back");
    sheet_free(&s);
    ok(sheet_read(data, len / 2, &LIMITS, &s) == SHEET_MALFORMED, "a truncated workbook: %s", s.why);
    sheet_free(&s);
    free(data);
  }

  struct zipstream *z = zipstream_new(from_memory);
  static char first[] = "manifest\n", second[300000];
  for (size_t i = 0; i < sizeof second; i++)
    second[i] = (char)(i * 7);
  ok(zipstream_add(z, "manifest.csv", strlen(first), NULL, first) == 0 &&
         zipstream_add(z, "01/1.1/整改报告.pdf", sizeof second, "2026-03-15 09:30:12", second) == 0,
     "zipstream: two entries");
  uint64_t size = zipstream_size(z);
  char *all = malloc(size), buf[7000];
  uint64_t at = 0;
  long n;
  while ((n = zipstream_read(z, at, buf, sizeof buf)) > 0) {
    memcpy(all + at, buf, (size_t)n);
    at += (uint64_t)n;
  }
  ok(n == -1 && at == size, "read to the end in pieces: %llu of %llu bytes", (unsigned long long)at,
     (unsigned long long)size);
  zip_error_t err;
  zip_error_init(&err);
  zip_t *za = zip_open_from_source(zip_source_buffer_create(all, size, 0, &err), ZIP_RDONLY | ZIP_CHECKCONS, &err);
  ok(za && zip_get_num_entries(za, 0) == 2, "libzip opens it, consistency checked");
  zip_stat_t st;
  ok(za && zip_stat(za, "01/1.1/整改报告.pdf", 0, &st) == 0 && st.size == sizeof second, "a UTF-8 name, its size");
  zip_file_t *zf = za ? zip_fopen(za, "01/1.1/整改报告.pdf", 0) : NULL;
  char *back = malloc(sizeof second + 1);
  zip_int64_t got = zf ? zip_fread(zf, back, sizeof second + 1) : -1;
  ok(got == (zip_int64_t)sizeof second && !memcmp(back, second, sizeof second) && zip_fclose(zf) == 0,
     "its bytes, CRC-32 checked by libzip");
  if (za)
    zip_discard(za);
  zipstream_free(z);
  z = zipstream_new(from_memory);
  ok(zipstream_add(z, "x", 1, NULL, first) == 0 && zipstream_read(z, 40, buf, 1) == -2,
     "a read out of order is refused (the CRC would be wrong)");
  ok(zipstream_add(z, "big", 0xFFFFFFFFu, NULL, first) == -1, "no ZIP64: 4 GiB is too much");
  zipstream_free(z);
  free(all);
  free(back);
  return done_testing();
}
