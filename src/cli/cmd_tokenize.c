/*
 * cmd_tokenize.c — `aios tokenize` and `aios detokenize`: text <-> token ids on stdin/stdout
 * with a Hugging Face tokenizer.json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void json_str(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; p < (const unsigned char *)s + n; p++) {
        if (*p == '"') fputs("\\\"", f);
        else if (*p == '\\') fputs("\\\\", f);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\r') fputs("\\r", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static int hex4(const char *s, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (x < 0) return 0;
        *v = *v * 16 + (unsigned)x;
    }
    return 1;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xC0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000)
        return o[0] = (char)(0xE0 | (cp >> 12)), o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), o[2] = (char)(0x80 | (cp & 0x3F)), 3;
    o[0] = (char)(0xF0 | (cp >> 18)), o[1] = (char)(0x80 | ((cp >> 12) & 0x3F)), o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes a JSON string literal (the whole line, surrounding spaces allowed) in place into
 * `out` (at least as long as the input); \u0000 is kept.  Returns the length or -1. */
static long json_unquote(const char *s, size_t n, char *out) {
    size_t i = 0, k = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) i++;
    if (i >= n || s[i] != '"') return -1;
    i++;
    for (;;) {
        if (i >= n) return -1;
        char c = s[i++];
        if (c == '"') break;
        if ((unsigned char)c < 0x20) return -1;
        if (c != '\\') {
            out[k++] = c;
            continue;
        }
        if (i >= n) return -1;
        char e = s[i++];
        unsigned cp;
        switch (e) {
        case '"': out[k++] = '"'; break;
        case '\\': out[k++] = '\\'; break;
        case '/': out[k++] = '/'; break;
        case 'b': out[k++] = '\b'; break;
        case 'f': out[k++] = '\f'; break;
        case 'n': out[k++] = '\n'; break;
        case 'r': out[k++] = '\r'; break;
        case 't': out[k++] = '\t'; break;
        case 'u':
            if (i + 4 > n || !hex4(s + i, &cp)) return -1;
            i += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u') {
                unsigned lo;
                if (hex4(s + i + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD; /* lone surrogate */
            k += put_utf8(out + k, cp);
            break;
        default: return -1;
        }
    }
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) i++;
    return i == n ? (long)k : -1;
}

static int parse_common(int argc, char **argv, const char *cmd, const char **path, int *flag, const char *flagname,
                        int *jsonl) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) *path = argv[++i];
        else if (!strcmp(argv[i], flagname)) *flag = 1;
        else if (jsonl && !strcmp(argv[i], "--jsonl")) *jsonl = 1;
        else {
            fprintf(stderr, "aios %s: unexpected argument '%s' (see 'aios %s --help')\n", cmd, argv[i], cmd);
            return 2;
        }
    }
    if (!*path) {
        fprintf(stderr, "aios %s: --tokenizer PATH is required\n", cmd);
        return 2;
    }
    return 0;
}

int aios_cmd_tokenize(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        printf("usage: aios tokenize --tokenizer PATH [--no-special] [--jsonl]\n\n"
               "Reads texts from stdin and prints their token ids.  PATH is a tokenizer.json or a model\n"
               "directory holding one (tokenizer_config.json beside it is read too).\n"
               "  default      one text per input line; one output line of space-separated ids each\n"
               "  --jsonl      each input line is a JSON string (texts may hold newlines); each output\n"
               "               line is {\"ids\":[...],\"tokens\":[...],\"offsets\":[[start,end],...]}\n"
               "               with offsets in characters of the text\n"
               "  --no-special do not add special tokens ([CLS]/[SEP], <s>, ...)\n"
               "Truncation and padding configured in tokenizer.json apply, as in `tokenizers`.\n"
               "Invalid UTF-8 is replaced by U+FFFD.\n");
        return 0;
    }
    const char *path = NULL;
    int nospecial = 0, jsonl = 0;
    int rc = parse_common(argc, argv, "tokenize", &path, &nospecial, "--no-special", &jsonl);
    if (rc) return rc;
    aios_tokenizer *tok = NULL;
    aios_status st = aios_tokenizer_load(path, &tok);
    if (st != AIOS_OK) return aios_cli_fail("tokenize", st);
    aios_tok_params p = aios_tokenizer_default_params(tok);
    p.add_special_tokens = !nospecial;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    size_t lineno = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if (n > 0 && line[n - 1] == '\n') line[--n] = 0;
        const char *text = line;
        size_t len = (size_t)n;
        char *buf = NULL;
        if (jsonl) {
            if (n == 0) continue;
            buf = malloc((size_t)n + 4);
            long l = buf ? json_unquote(line, (size_t)n, buf) : -1;
            if (l < 0) {
                free(buf);
                fprintf(stderr, "aios: tokenize: stdin line %zu: not a JSON string\n", lineno);
                free(line);
                aios_tokenizer_free(tok);
                return 1;
            }
            text = buf;
            len = (size_t)l;
        }
        aios_encoding *enc = NULL;
        st = aios_tokenizer_encode(tok, text, len, &p, &enc);
        if (st != AIOS_OK) {
            free(buf);
            free(line);
            aios_tokenizer_free(tok);
            return aios_cli_fail("tokenize", st);
        }
        if (jsonl) {
            fputs("{\"ids\":[", stdout);
            for (size_t i = 0; i < enc->n; i++) printf(i ? ",%d" : "%d", enc->ids[i]);
            fputs("],\"tokens\":[", stdout);
            for (size_t i = 0; i < enc->n; i++) {
                if (i) fputc(',', stdout);
                json_str(stdout, enc->tokens[i], enc->token_lens[i]);
            }
            fputs("],\"offsets\":[", stdout);
            for (size_t i = 0; i < enc->n; i++) printf(i ? ",[%zu,%zu]" : "[%zu,%zu]", enc->offsets[i][0], enc->offsets[i][1]);
            fputs("]}\n", stdout);
        } else {
            for (size_t i = 0; i < enc->n; i++) printf(i ? " %d" : "%d", enc->ids[i]);
            fputc('\n', stdout);
        }
        aios_encoding_free(enc);
        free(buf);
    }
    free(line);
    aios_tokenizer_free(tok);
    return 0;
}

int aios_cmd_detokenize(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        printf("usage: aios detokenize --tokenizer PATH [--skip-special] [--jsonl]\n\n"
               "Reads token ids from stdin, one sequence per line (separated by spaces; commas and\n"
               "[ ] are ignored, so JSON lists work too), and prints each decoded text on one line.\n"
               "  --skip-special  leave out special tokens\n"
               "  --jsonl         print each text as a JSON string (texts may hold newlines)\n");
        return 0;
    }
    const char *path = NULL;
    int skip = 0, jsonl = 0;
    int rc = parse_common(argc, argv, "detokenize", &path, &skip, "--skip-special", &jsonl);
    if (rc) return rc;
    aios_tokenizer *tok = NULL;
    aios_status st = aios_tokenizer_load(path, &tok);
    if (st != AIOS_OK) return aios_cli_fail("detokenize", st);
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int32_t *ids = NULL;
    size_t nids = 0, idcap = 0;
    int ret = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        nids = 0;
        char *s = line;
        while (*s) {
            if (*s == ' ' || *s == '\t' || *s == ',' || *s == '[' || *s == ']' || *s == '\n' || *s == '\r') {
                s++;
                continue;
            }
            char *end;
            long v = strtol(s, &end, 10);
            if (end == s || v < 0 || v > 0x7FFFFFFF) {
                fprintf(stderr, "aios: detokenize: stdin line %zu: '%.20s' is not a token id\n", lineno, s);
                ret = 1;
                goto out;
            }
            if (nids == idcap) {
                idcap = idcap ? idcap * 2 : 64;
                int32_t *p = realloc(ids, idcap * sizeof *p);
                if (!p) {
                    fprintf(stderr, "aios: detokenize: out of memory\n");
                    ret = 1;
                    goto out;
                }
                ids = p;
            }
            ids[nids++] = (int32_t)v;
            s = end;
        }
        char *text = NULL;
        size_t tl;
        st = aios_tokenizer_decode(tok, ids, nids, skip, &text, &tl);
        if (st != AIOS_OK) {
            ret = aios_cli_fail("detokenize", st);
            goto out;
        }
        if (jsonl) json_str(stdout, text, tl);
        else fwrite(text, 1, tl, stdout);
        fputc('\n', stdout);
        free(text);
    }
out:
    free(ids);
    free(line);
    aios_tokenizer_free(tok);
    return ret;
}
