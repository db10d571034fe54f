/*
 * oracle: reads a Xen domain config with libxlutil (Xen's own parser, from
 * libxen-dev) and prints what it understood, so that the hvconfig tests can
 * compare their parser against Xen's.
 *
 * Usage: oracle FILE [KEY...]
 *
 * Exit status 0 when libxlutil accepts FILE, 1 when it rejects it (its
 * report goes to stderr), 2 on a usage or memory error. For an accepted
 * file, one line per KEY on stdout: "KEY<TAB>VALUE", where VALUE is "-" when
 * the key is not set, "s" followed by the hex bytes of a string (numbers are
 * strings to libxlutil), or "[" items separated by "," "]" for a list.
 * libxlutil has no iterator over its keys: the caller names them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libxlutil.h>

static void dump_string(const char *s)
{
    putchar('s');
    for (; *s; s++)
        printf("%02x", (unsigned char)*s);
}

static int dump_list(XLU_Config *cfg, XLU_ConfigList *list)
{
    int i;
    XLU_ConfigValue *v;

    putchar('[');
    for (i = 0; (v = xlu_cfg_get_listitem2(list, i)) != NULL; i++) {
        if (i > 0)
            putchar(',');
        if (xlu_cfg_value_type(v) == XLU_STRING) {
            char *s;
            if (xlu_cfg_value_get_string(cfg, v, &s, 1))
                return 1;
            dump_string(s);
        } else {
            XLU_ConfigList *sub;
            if (xlu_cfg_value_get_list(cfg, v, &sub, 1))
                return 1;
            if (dump_list(cfg, sub))
                return 1;
        }
    }
    putchar(']');
    return 0;
}

int main(int argc, char **argv)
{
    XLU_Config *cfg;
    int i, e;

    if (argc < 2) {
        fprintf(stderr, "usage: oracle FILE [KEY...]\n");
        return 2;
    }
    cfg = xlu_cfg_init(stderr, argv[1]);
    if (!cfg) {
        fprintf(stderr, "oracle: out of memory\n");
        return 2;
    }
    e = xlu_cfg_readfile(cfg, argv[1]);
    if (e) {
        fprintf(stderr, "oracle: %s: rejected: %s\n", argv[1], strerror(e));
        xlu_cfg_destroy(cfg);
        return 1;
    }
    for (i = 2; i < argc; i++) {
        const char *s;
        XLU_ConfigList *list;

        printf("%s\t", argv[i]);
        e = xlu_cfg_get_string(cfg, argv[i], &s, 1);
        if (!e) {
            dump_string(s);
        } else if (e == ESRCH) {
            putchar('-');
        } else if (xlu_cfg_get_list(cfg, argv[i], &list, NULL, 1) == 0) {
            if (dump_list(cfg, list)) {
                fprintf(stderr, "oracle: %s: cannot read list\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "oracle: %s: neither string nor list\n", argv[i]);
            return 2;
        }
        putchar('\n');
    }
    xlu_cfg_destroy(cfg);
    return 0;
}
