/* libFuzzer harness for the spreadsheet readers (sheet.c): pure code, no server, no database.
 * The first byte picks what the rest is:
 *   0: a whole file, as an upload comes (XLSX, CSV or anything else);
 *   1: a worksheet part, put into a workbook's zip (zipstream.c) with the other parts it needs,
 *      so that the XML reader is reached by every input rather than only by valid zips;
 *   2: the shared strings part and, after the first NUL, a worksheet part, likewise;
 *   3: CSV text, written back with csv_record and read again: what comes back is what went in.
 * Built with clang-14 (-fsanitize=fuzzer,address,undefined) by tests/meson.build; scripts/test runs it
 * for a minute when DUCHA_EXTENDED=1 (tests/fuzz/run). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sheet.h"
#include "text.h"
#include "zipstream.h"

static const struct sheet_limits LIMITS = {2000, 64, 4u << 20, 256u << 10, 5000};

static const char CONTENT_TYPES[] = "<?xml version=\"1.0\"?><Types/>";
static const char WORKBOOK[] =
    "<?xml version=\"1.0\"?><workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\""
    " xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><sheets>"
    "<sheet name=\"s\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>";
static const char RELS[] =
    "<?xml version=\"1.0\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
    "<Relationship Id=\"rId1\" Type=\"x/worksheet\" Target=\"worksheets/sheet1.xml\"/>"
    "<Relationship Id=\"rId2\" Type=\"x/sharedStrings\" Target=\"sharedStrings.xml\"/></Relationships>";

struct part {
  const char *data;
  size_t size;
};

static long part_read(void *entry, uint64_t at, char *out, size_t max) {
  const struct part *p = entry;
  memcpy(out, p->data + at, max);
  return (long)max;
}

static void read_and_free(const void *data, size_t size) {
  struct sheet s;
  if (sheet_read(data, size, &LIMITS, &s) == SHEET_OK)
    for (int i = 0; i < s.nrows; i++)
      for (int j = 0; j < s.rows[i].ncells + 1; j++)
        (void)strlen(sheet_cell(&s, i, j));
  sheet_free(&s);
}

/* A workbook of the fixed parts with strings and sheet as its shared strings and worksheet. */
static void in_a_workbook(const char *strings, size_t nstrings, const char *sheet, size_t nsheet) {
  struct part parts[] = {{CONTENT_TYPES, sizeof CONTENT_TYPES - 1}, {WORKBOOK, sizeof WORKBOOK - 1},
                         {RELS, sizeof RELS - 1}, {strings, nstrings}, {sheet, nsheet}};
  static const char *const names[] = {"[Content_Types].xml", "xl/workbook.xml", "xl/_rels/workbook.xml.rels",
                                      "xl/sharedStrings.xml", "xl/worksheets/sheet1.xml"};
  struct zipstream *z = zipstream_new(part_read);
  for (int i = 0; i < 5; i++)
    if ((i != 3 || strings) && zipstream_add(z, names[i], parts[i].size, NULL, &parts[i]))
      abort();
  uint64_t size = zipstream_size(z), at = 0;
  char *zip = malloc(size);
  long n;
  while (zip && (n = zipstream_read(z, at, zip + at, size - at)) > 0)
    at += (uint64_t)n;
  if (zip && at == size)
    read_and_free(zip, size);
  free(zip);
  zipstream_free(z);
}

/* CSV cells written by csv_record come back as they were. */
static void csv_round_trip(const char *data, size_t size) {
  struct sheet s;
  if (sheet_read(data, size, &LIMITS, &s) != SHEET_OK) {
    sheet_free(&s);
    return;
  }
  struct text out = {0};
  text_put(&out, "\xEF\xBB\xBF"); /* as the exports write it */
  for (int i = 0; i < s.nrows; i++)
    csv_record(&out, (const char *const *)s.rows[i].cells, s.rows[i].ncells);
  struct sheet back;
  if (!out.failed && sheet_read(out.s, out.len, &LIMITS, &back) == SHEET_OK) {
    if (back.nrows != s.nrows)
      abort();
    for (int i = 0; i < s.nrows; i++)
      for (int j = 0; j < s.rows[i].ncells; j++)
        if (strcmp(sheet_cell(&s, i, j), sheet_cell(&back, i, j)))
          abort(); /* csv_record and the reader disagree */
  }
  sheet_free(&back);
  free(text_take(&out, NULL));
  sheet_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const char *rest = (const char *)data + 1;
  size_t n = size - 1;
  switch (data[0] & 3) {
  case 0:
    read_and_free(rest, n);
    break;
  case 1:
    in_a_workbook(NULL, 0, rest, n);
    break;
  case 2: {
    const char *nul = memchr(rest, 0, n);
    size_t first = nul ? (size_t)(nul - rest) : n;
    in_a_workbook(rest, first, nul ? nul + 1 : "", nul ? n - first - 1 : 0);
    break;
  }
  default:
    csv_round_trip(rest, n);
  }
  return 0;
}
