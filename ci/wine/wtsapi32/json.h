/*
 * A small JSON reader for the stand-in's state file (RFC 8259 grammar, no extensions).
 *
 * Strings come out as UTF-16 (what the WTS API hands back), with \uXXXX escapes kept as
 * they are, so a state file can hold lone surrogates, NULs and control characters for
 * hostile-input scenarios. Everything is allocated from the heap passed to json_parse and
 * is never freed: the state lives as long as the process.
 */
#ifndef STANDIN_JSON_H
#define STANDIN_JSON_H

#include <windows.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value {
    json_type type;
    BOOL boolean;
    /* JSON_NUMBER: is_integer when the text had no fraction or exponent and fits. */
    BOOL is_integer;
    LONGLONG integer;
    double number;
    /* JSON_STRING: NUL-terminated UTF-16; length in WCHARs (the text may hold \u0000). */
    WCHAR *string;
    size_t length;
    /* JSON_ARRAY and JSON_OBJECT: count items; JSON_OBJECT also has keys (UTF-16). */
    struct json_value **items;
    WCHAR **keys;
    size_t count;
} json_value;

/* Parses text[0..size). On error returns NULL and writes a message (ASCII) into error. */
json_value *json_parse(HANDLE heap, const char *text, size_t size, char *error, size_t error_size);

/* The member named key (ASCII) of an object, or NULL (also when value is not an object). */
const json_value *json_member(const json_value *object, const char *key);

/* TRUE when the UTF-16 string equals the ASCII literal, ignoring ASCII case if fold. */
BOOL json_wide_equals_ascii(const WCHAR *wide, size_t length, const char *ascii, BOOL fold);

#endif
