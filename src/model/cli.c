/*
 * cli.c -- the `forewarn model` command line: `train` and `score`, their
 * options and exit statuses (0 done, 1 bad input, 2 usage).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"
#include "util/util.h"

static const char usage[] =
    "usage: forewarn model train --csv FILE --label COLUMN --positive VALUE [--id COLUMN]\n"
    "                            --out MODEL [--folds K] [--threshold T] [--grid quick|full]\n"
    "       forewarn model score --model MODEL --csv FILE [--id COLUMN]\n";

static int bad(const char *fmt, const char *arg)
{
    fprintf(stderr, fmt, arg);
    fputs(usage, stderr);
    return 2;
}

static int train(int argc, char **argv, const char *version)
{
    struct train_opts o = {.folds = 5, .threshold = 0.5, .ngrid = model__ngrid};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return bad("model train: %s needs a value (or is unknown)\n", a);
        char *end;
        if (!strcmp(a, "--csv"))
            o.csv = v;
        else if (!strcmp(a, "--label"))
            o.label = v;
        else if (!strcmp(a, "--positive"))
            o.positive = v;
        else if (!strcmp(a, "--id"))
            o.id = v;
        else if (!strcmp(a, "--out"))
            o.out = v;
        else if (!strcmp(a, "--folds")) {
            unsigned long k = strtoul(v, &end, 10);
            if (*end || k < 2 || k > 20)
                return bad("model train: --folds %s: a whole number from 2 to 20\n", v);
            o.folds = (unsigned)k;
        } else if (!strcmp(a, "--threshold")) {
            o.threshold = strtod(v, &end);
            if (*end || !(o.threshold > 0 && o.threshold < 1))
                return bad("model train: --threshold %s: a number between 0 and 1\n", v);
        } else if (!strcmp(a, "--grid")) {
            if (!strcmp(v, "quick"))
                o.ngrid = 1;
            else if (!strcmp(v, "full"))
                o.ngrid = model__ngrid;
            else
                return bad("model train: --grid %s: quick or full\n", v);
        } else
            return bad("model train: unknown option %s\n", a);
        i++;
    }
    if (!o.csv || !o.label || !o.positive || !o.out)
        return bad("%s", "model train: --csv, --label, --positive and --out are required\n");
    return model__train(&o, version, stdout, stderr) ? 1 : 0;
}

static int score(int argc, char **argv)
{
    const char *model = NULL, *csv = NULL, *id = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return bad("model score: %s needs a value (or is unknown)\n", a);
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--csv"))
            csv = v;
        else if (!strcmp(a, "--id"))
            id = v;
        else
            return bad("model score: unknown option %s\n", a);
        i++;
    }
    if (!model || !csv)
        return bad("%s", "model score: --model and --csv are required\n");
    return model__score(model, csv, id, stdout, stderr) ? 1 : 0;
}

int model_main(int argc, char **argv, const char *version)
{
    if (argc >= 2 && !strcmp(argv[1], "train"))
        return train(argc - 1, argv + 1, version);
    if (argc >= 2 && !strcmp(argv[1], "score"))
        return score(argc - 1, argv + 1);
    fputs(usage, stderr);
    return 2;
}
