/*
 * cmd_train.c — `aios train` (LoRA training from JSONL) and `aios lora convert|merge`.
 * Ctrl-C stops after the current step and writes the adapter so far (atomically).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static void usage_train(FILE *f) {
    fprintf(f,
            "usage: aios train --model M --data FILE --out OUT [options]\n"
            "       aios train --model M --from-store DIR --out OUT [options]\n"
            "       aios train --model M --data FILE --resume OUT [--out OUT2] [--steps N]\n\n"
            "Trains a LoRA adapter on a decoder model (weights stay frozen in their stored dtype).\n"
            "FILE is JSONL: {\"q\": ..., \"a\": ...} (chat template around the question, loss on the\n"
            "answer + end-of-turn), {\"messages\": [...]} (loss on the last, assistant, message) or\n"
            "{\"text\": ...} (every token).  OUT is a PEFT adapter directory, or a skill card when it\n"
            "ends in .parquet.\n\n"
            "  --rank R             LoRA rank (default 8)\n"
            "  --alpha A            lora_alpha (default 16); scaling alpha / rank\n"
            "  --rslora             scaling alpha / sqrt(rank)\n"
            "  --target LIST        modules: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj\n"
            "                       or all (default q_proj,v_proj)\n"
            "  --dropout P          lora_dropout (default 0)\n"
            "  --lr LR              peak learning rate (default: from the data size, 3e-3 for up to\n"
            "                       64 examples, falling log-linearly to 2e-4 at 4096 and more)\n"
            "  --steps N | --epochs E   optimizer steps, or passes over the data (default: whole\n"
            "                       epochs until at least 30 steps)\n"
            "  --batch B            sequences per batch (default: all, up to 8)\n"
            "  --accum K            batches per optimizer step (default 1)\n"
            "  --weight-decay W     AdamW decoupled weight decay (default 0)\n"
            "  --clip C             global gradient-norm clip (default 1; 0 = off)\n"
            "  --schedule S         constant | cosine (default constant)\n"
            "  --warmup N           linear warm-up steps (default 0)\n"
            "  --from-store DIR     train on a memory store: each memory's content is a {\"text\"}\n"
            "                       example (with --data, both)\n"
            "  --init-adapter P     start from a PEFT directory or skill card (its rank/alpha/targets)\n"
            "  --seed S             initialisation, dropout and shuffling seed (default 0)\n"
            "  --resume DIR         continue the run that wrote DIR (an adapter with its trainer state:\n"
            "                       AdamW moments, step, lr schedule, data order) exactly; same model\n"
            "                       and data, its settings; --steps/--epochs set a new total; --out\n"
            "                       defaults to DIR\n"
            "  --save-every N       every N steps a checkpoint OUT/checkpoint-STEP (adapter + state)\n"
            "  --checkpoint         keep only each layer's input and recompute the layer in the\n"
            "                       backward (less memory, one more forward; the same gradients)\n"
            "  --max-len N          truncate longer sequences (default: the model's context, <= 2048)\n"
            "  --log-jsonl F        one {\"step\", \"loss\", \"grad_norm\", \"lr\"} line per step\n"
            "  --name NAME          skill card name (default: the data file's name)\n"
            "  --threads N          kernel threads\n\n"
            "examples:\n"
            "  aios train --model SmolLM2-135M-Instruct --data facts.jsonl --out facts-lora --epochs 3\n"
            "  aios train --model M --data qa.jsonl --out skill.parquet --rank 16 --target all --steps 100 --save-every 25\n"
            "  aios train --model M --data qa.jsonl --resume skill-checkpoint-50.parquet --out skill.parquet\n");
}

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
}

static int on_progress(void *user, const aios_train_progress *p) {
    int tty = *(int *)user;
    int64_t every = p->total_steps >= 10 ? p->total_steps / 10 : 1;
    if (!tty && (p->step % every == 0 || p->step == p->total_steps || p->step == 1)) {
        /* not a terminal (a log, a pipe): a plain line at every tenth of the run */
        int eta = (int)(p->eta_s + 0.5);
        struct timespec cpu; /* the process's CPU time (all threads): the measure that survives a loaded machine */
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
        fprintf(stderr, "aios: train: step %lld/%lld loss %.4f grad %.3f lr %.3g %.0f tok/s elapsed %.2f s cpu %.2f s ETA %d:%02d\n",
                (long long)p->step, (long long)p->total_steps, p->loss, p->grad_norm, p->lr, p->tokens_per_s, p->elapsed_s,
                (double)cpu.tv_sec + 1e-9 * (double)cpu.tv_nsec, eta / 60, eta % 60);
    } else if (tty) {
        int eta = (int)(p->eta_s + 0.5);
        fprintf(stderr, "\rstep %lld/%lld  loss %.4f  grad %.3f  lr %.3g  %.0f tok/s  ETA %d:%02d   ", (long long)p->step,
                (long long)p->total_steps, p->loss, p->grad_norm, p->lr, p->tokens_per_s, eta / 60, eta % 60);
        fflush(stderr);
    }
    return g_stop;
}

static int num(const char *opt, const char *v, double lo, double hi, double *out) {
    char *e;
    errno = 0;
    double x = v ? strtod(v, &e) : 0;
    if (!v || !*v || *e || errno || !(x >= lo && x <= hi)) {
        fprintf(stderr, "aios: train: %s: invalid value '%s' (expected %g..%g)\n", opt, v ? v : "", lo, hi);
        return 0;
    }
    *out = x;
    return 1;
}

int aios_cmd_train(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        usage_train(stdout);
        return 0;
    }
    aios_train_params p = aios_train_default_params();
    const char *model = NULL, *data = NULL, *out = NULL;
    int have_steps = 0, have_epochs = 0;
    const char *setting = NULL; /* the first option that --resume takes from the run instead */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        int takes = 1;
        static const char *const run_settings[] = {"--rank", "--alpha", "--rslora", "--target", "--dropout", "--lr",
                                                   "--batch", "--accum", "--weight-decay", "--clip", "--schedule",
                                                   "--warmup", "--seed", "--max-len", "--init-adapter"};
        for (size_t k = 0; !setting && k < sizeof run_settings / sizeof *run_settings; k++)
            if (!strcmp(a, run_settings[k])) setting = a;
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--rank")) { if (!num(a, v, 1, 4096, &x)) return 2; p.rank = (int64_t)x; }
        else if (!strcmp(a, "--alpha")) { if (!num(a, v, 1e-6, 1e6, &x)) return 2; p.alpha = x; }
        else if (!strcmp(a, "--rslora")) { p.rslora = 1; takes = 0; }
        else if (!strcmp(a, "--checkpoint")) { p.checkpoint = 1; takes = 0; }
        else if (!strcmp(a, "--target")) p.targets = v;
        else if (!strcmp(a, "--dropout")) { if (!num(a, v, 0, 0.99, &x)) return 2; p.dropout = x; }
        else if (!strcmp(a, "--lr")) { if (!num(a, v, 1e-12, 10, &x)) return 2; p.lr = x; }
        else if (!strcmp(a, "--steps")) { if (!num(a, v, 1, 1e9, &x)) return 2; p.steps = (int64_t)x; have_steps = 1; }
        else if (!strcmp(a, "--epochs")) { if (!num(a, v, 1, 1e6, &x)) return 2; p.epochs = (int64_t)x; have_epochs = 1; }
        else if (!strcmp(a, "--batch")) { if (!num(a, v, 1, 65536, &x)) return 2; p.batch = (int64_t)x; }
        else if (!strcmp(a, "--accum")) { if (!num(a, v, 1, 65536, &x)) return 2; p.accum = (int64_t)x; }
        else if (!strcmp(a, "--weight-decay")) { if (!num(a, v, 0, 10, &x)) return 2; p.weight_decay = x; }
        else if (!strcmp(a, "--clip")) { if (!num(a, v, 0, 1e9, &x)) return 2; p.clip = x; }
        else if (!strcmp(a, "--warmup")) { if (!num(a, v, 0, 1e9, &x)) return 2; p.warmup = (int64_t)x; }
        else if (!strcmp(a, "--seed")) { if (!num(a, v, 0, 1.8e19, &x)) return 2; p.seed = (uint64_t)x; }
        else if (!strcmp(a, "--max-len")) { if (!num(a, v, 2, 1 << 20, &x)) return 2; p.max_len = (int64_t)x; }
        else if (!strcmp(a, "--threads")) { if (!num(a, v, 1, 1024, &x)) return 2; p.n_threads = (int)x; }
        else if (!strcmp(a, "--log-jsonl")) p.log_jsonl = v;
        else if (!strcmp(a, "--init-adapter")) p.init_adapter = v;
        else if (!strcmp(a, "--resume")) p.resume = v;
        else if (!strcmp(a, "--save-every")) { if (!num(a, v, 1, 1e9, &x)) return 2; p.save_every = (int64_t)x; }
        else if (!strcmp(a, "--from-store")) p.from_store = v;
        else if (!strcmp(a, "--name")) p.name = v;
        else if (!strcmp(a, "--schedule")) {
            if (v && !strcmp(v, "cosine")) p.cosine = 1;
            else if (v && !strcmp(v, "constant")) p.cosine = 0;
            else {
                fprintf(stderr, "aios: train: --schedule: '%s' (constant or cosine)\n", v ? v : "");
                return 2;
            }
        } else {
            fprintf(stderr, "aios: train: unknown option '%s' (see 'aios train --help')\n", a);
            return 2;
        }
        if (takes) {
            if (!v) {
                fprintf(stderr, "aios: train: %s needs a value\n", a);
                return 2;
            }
            i++;
        }
    }
    if (p.resume && setting) {
        fprintf(stderr, "aios: train: %s: not with --resume (the run's settings are in its trainer_state.json)\n", setting);
        return 2;
    }
    if (p.resume && !out) out = p.resume;
    if (!model || (!data && !p.from_store) || !out) {
        fprintf(stderr, "aios: train: --model, --data (or --from-store) and --out are required (see 'aios train --help')\n");
        return 2;
    }
    if (have_steps && have_epochs) {
        fprintf(stderr, "aios: train: give --steps or --epochs, not both\n");
        return 2;
    }
    int tty = isatty(2);
    p.progress = on_progress;
    p.save_state = 1; /* so that a finished or interrupted run can be resumed */
    p.progress_user = &tty;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    aios_train_result r;
    aios_status s = aios_train(model, data, out, &p, &r);
    sigaction(SIGINT, &old, NULL);
    if (tty) fprintf(stderr, "\n");
    if (s) return aios_cli_fail("train", s);
    fprintf(stderr, "%s: %lld steps (lr %.3g) on %lld examples (%lld label tokens), loss %.4f -> %.4f, %.1f s, activations %.1f MiB -> %s\n",
            r.stopped ? "interrupted" : "trained", (long long)r.steps, r.lr, (long long)r.examples, (long long)r.label_tokens,
            r.first_loss, r.last_loss, r.seconds, (double)r.activation_bytes / (1 << 20), out);
    return 0;
}

static void usage_lora(FILE *f) {
    fprintf(f,
            "usage: aios lora convert --model M IN OUT\n"
            "       aios lora merge MODEL ADAPTER OUT [--scale S]\n\n"
            "convert: a PEFT adapter directory <-> a skill card (.parquet); the output kind follows\n"
            "         OUT's name (.parquet = skill card, else a PEFT directory).\n"
            "merge:   writes MODEL's weights with W' = W + S (alpha/r) B A as a Hugging Face directory\n"
            "         (model.safetensors float32 + config and tokenizer files).\n\n"
            "examples:\n"
            "  aios lora convert --model SmolLM2 facts-lora facts.parquet\n"
            "  aios lora convert --model SmolLM2 facts.parquet facts-peft\n"
            "  aios lora merge SmolLM2 facts-lora SmolLM2-facts\n");
}

int aios_cmd_lora(int argc, char **argv) {
    if (argc < 2 || aios_cli_wants_help(argc, argv)) {
        usage_lora(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *pos[4];
    int np = 0;
    const char *model = NULL;
    double scale = 1.0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--scale") && i + 1 < argc) {
            if (!num("--scale", argv[++i], -100, 100, &scale)) return 2;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "aios: lora: unknown option '%s' (see 'aios lora --help')\n", argv[i]);
            return 2;
        } else if (np < 4) pos[np++] = argv[i];
        else {
            fprintf(stderr, "aios: lora: too many arguments\n");
            return 2;
        }
    }
    if (!strcmp(argv[1], "convert")) {
        if (!model || np != 2) {
            fprintf(stderr, "aios: lora convert: needs --model M IN OUT\n");
            return 2;
        }
        aios_status s = aios_lora_convert(model, pos[0], pos[1]);
        if (s) return aios_cli_fail("lora convert", s);
        fprintf(stderr, "%s -> %s\n", pos[0], pos[1]);
        return 0;
    }
    if (!strcmp(argv[1], "merge")) {
        if (np != 3) {
            fprintf(stderr, "aios: lora merge: needs MODEL ADAPTER OUT\n");
            return 2;
        }
        aios_status s = aios_lora_merge(pos[0], pos[1], (float)scale, pos[2]);
        if (s) return aios_cli_fail("lora merge", s);
        fprintf(stderr, "merged %s into %s -> %s\n", pos[1], pos[0], pos[2]);
        return 0;
    }
    fprintf(stderr, "aios: lora: unknown subcommand '%s' (convert, merge)\n", argv[1]);
    return 2;
}
