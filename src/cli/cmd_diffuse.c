/* cmd_diffuse.c — `aios diffuse`: masked-diffusion text generation (LLaDA, Dream, block
 * diffusion) from a prompt, optionally with a suffix to infill towards. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: aios diffuse --model DIR (--prompt TEXT | --prompt-ids 1,2,...) [options]\n\n"
            "Generates text by masked diffusion: the canvas `prompt + N masks (+ suffix)` is unmasked a few\n"
            "tokens per step, most confident first, block by block.\n\n"
            "  --model DIR            LLaDA, Dream or block-diffusion (BD3LM) model directory\n"
            "  --prompt TEXT          prompt text (needs the model's tokenizer)\n"
            "  --prompt-ids LIST      prompt as comma-separated token ids\n"
            "  --suffix TEXT | --suffix-ids LIST   text after the gap (infilling; not for block diffusion)\n"
            "  --gen-length N         tokens to generate (default 64)\n"
            "  --steps S              denoising steps over all blocks (default: config diffusion.num_steps,\n"
            "                         at most N)\n"
            "  --block-length B       semi-autoregressive block (default N; block diffusion: the model's)\n"
            "  --algorithm A          low_confidence (default) | margin | entropy | random\n"
            "  --plan P               llada (default) | dream | cosine: tokens committed per step\n"
            "  --temperature T        0 = greedy (default); > 0 samples with float64 Gumbel noise\n"
            "  --top-k K, --top-p P   restrict the candidates\n"
            "  --seed S               random seed (default 0)\n"
            "  --guidance-scale G     classifier-free guidance (unconditional = prompt masked; 0 = off)\n"
            "  --threshold TAU        Fast-dLLM: commit every token more confident than TAU (at least one)\n"
            "  --cache MODE           auto (default) | none | exact (block diffusion) | prefix (Fast-dLLM)\n"
            "  --no-stop              do not stop after a block that contains EOS\n"
            "  --memory-store DIR     memory-guided: retrieved memories go ahead of the prompt (needs --prompt)\n"
            "  --memory-encoder DIR   embedding model for the store (default: the one it records)\n"
            "  --memory-top-k K       memories retrieved (default 3)\n"
            "  --memory-budget N      tokens of memories at most (default 256)\n"
            "  --ids                  print the whole canvas's ids (space-separated) instead of text\n"
            "  --show                 redraw the canvas on stderr as it unmasks\n"
            "  --stats                print steps, forwards, time and uncertainty on stderr\n"
            "  --config FILE          configuration file (evolution.uncertainty_threshold, diffusion.num_steps)\n");
}

/* "1,2,3" -> ids; returns count or -1 on a bad list. */
static int64_t parse_ids(const char *s, int32_t **out) {
    int64_t n = 1;
    for (const char *p = s; *p; p++) n += *p == ',';
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids) return -1;
    int64_t k = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(ids);
            return -1;
        }
        ids[k++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    *out = ids;
    return k;
}

static int parse_num(const char *flag, const char *s, double lo, double hi, double *v) {
    return aios_cli_float("diffuse", flag, s, lo, hi, v);
}

typedef struct {
    int32_t mask_id;
    int tty;
} show_ctx;

static void on_step(void *user, const int32_t *canvas, int64_t n, int step) {
    show_ctx *c = user;
    fprintf(stderr, c->tty ? "\r\033[Kstep %3d:" : "step %3d:", step);
    for (int64_t i = 0; i < n; i++) {
        if (canvas[i] == c->mask_id) fputs(" _", stderr);
        else fprintf(stderr, " %d", canvas[i]);
    }
    if (!c->tty) fputc('\n', stderr);
    fflush(stderr);
}

int aios_cmd_diffuse(int argc, char **argv) {
    if (aios_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *model = NULL, *prompt = NULL, *prompt_ids = NULL, *suffix = NULL, *suffix_ids = NULL;
    const char *config = NULL, *memory_store = NULL, *memory_encoder = NULL;
    int ids_out = 0, show = 0, stats = 0, steps_given = 0;
    aios_diffuse_params p = aios_diffuse_default_params();
    p.gen_length = 64;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
#define NEED_VALUE                                                           \
    if (!v) {                                                                \
        fprintf(stderr, "aios: diffuse: %s: needs a value\n", a);              \
        return 2;                                                            \
    }                                                                        \
    i++
        if (!strcmp(a, "--model")) { NEED_VALUE; model = v; }
        else if (!strcmp(a, "--prompt")) { NEED_VALUE; prompt = v; }
        else if (!strcmp(a, "--prompt-ids")) { NEED_VALUE; prompt_ids = v; }
        else if (!strcmp(a, "--suffix")) { NEED_VALUE; suffix = v; }
        else if (!strcmp(a, "--suffix-ids")) { NEED_VALUE; suffix_ids = v; }
        else if (!strcmp(a, "--memory-store")) { NEED_VALUE; memory_store = v; }
        else if (!strcmp(a, "--memory-encoder")) { NEED_VALUE; memory_encoder = v; }
        else if (!strcmp(a, "--memory-top-k")) { NEED_VALUE; if (!parse_num(a, v, 0, 1024, &x)) return 2; p.memory_top_k = (int32_t)x; }
        else if (!strcmp(a, "--memory-budget")) { NEED_VALUE; if (!parse_num(a, v, 0, 1 << 20, &x)) return 2; p.memory_token_budget = (int64_t)x; }
        else if (!strcmp(a, "--config")) { NEED_VALUE; config = v; }
        else if (!strcmp(a, "--gen-length")) { NEED_VALUE; if (!parse_num(a, v, 0, 1 << 20, &x)) return 2; p.gen_length = (int64_t)x; }
        else if (!strcmp(a, "--steps")) { NEED_VALUE; if (!parse_num(a, v, 1, 1 << 20, &x)) return 2; p.steps = (int)x; steps_given = 1; }
        else if (!strcmp(a, "--block-length")) { NEED_VALUE; if (!parse_num(a, v, 1, 1 << 20, &x)) return 2; p.block_length = (int64_t)x; }
        else if (!strcmp(a, "--temperature")) { NEED_VALUE; if (!parse_num(a, v, 0, 1e6, &p.temperature)) return 2; }
        else if (!strcmp(a, "--top-k")) { NEED_VALUE; if (!parse_num(a, v, 0, 1 << 30, &x)) return 2; p.top_k = (int)x; }
        else if (!strcmp(a, "--top-p")) { NEED_VALUE; if (!parse_num(a, v, 1e-12, 1, &p.top_p)) return 2; }
        else if (!strcmp(a, "--seed")) { NEED_VALUE; if (!parse_num(a, v, 0, 1.8e19, &x)) return 2; p.seed = (uint64_t)x; }
        else if (!strcmp(a, "--guidance-scale")) { NEED_VALUE; if (!parse_num(a, v, 0, 1e6, &p.guidance_scale)) return 2; }
        else if (!strcmp(a, "--threshold")) { NEED_VALUE; if (!parse_num(a, v, 0, 1, &p.threshold)) return 2; }
        else if (!strcmp(a, "--algorithm")) {
            NEED_VALUE;
            int alg = aios_remask_parse(v);
            if (alg < 0) {
                fprintf(stderr, "aios: diffuse: --algorithm: '%s' is not low_confidence, margin, entropy or random\n", v);
                return 2;
            }
            p.algorithm = (aios_remask)alg;
        } else if (!strcmp(a, "--plan")) {
            NEED_VALUE;
            if (!strcmp(v, "llada")) p.plan = AIOS_PLAN_LLADA;
            else if (!strcmp(v, "dream")) p.plan = AIOS_PLAN_DREAM;
            else if (!strcmp(v, "cosine")) p.plan = AIOS_PLAN_COSINE;
            else {
                fprintf(stderr, "aios: diffuse: --plan: '%s' is not llada, dream or cosine\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--cache")) {
            NEED_VALUE;
            if (!strcmp(v, "auto")) p.kv_cache = AIOS_KV_AUTO;
            else if (!strcmp(v, "none")) p.kv_cache = AIOS_KV_NONE;
            else if (!strcmp(v, "exact")) p.kv_cache = AIOS_KV_EXACT;
            else if (!strcmp(v, "prefix")) p.kv_cache = AIOS_KV_PREFIX;
            else {
                fprintf(stderr, "aios: diffuse: --cache: '%s' is not auto, none, exact or prefix\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--no-stop")) p.stop_at_eos = 0;
        else if (!strcmp(a, "--ids")) ids_out = 1;
        else if (!strcmp(a, "--show")) show = 1;
        else if (!strcmp(a, "--stats")) stats = 1;
        else {
            fprintf(stderr, "aios: diffuse: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
#undef NEED_VALUE
    }
    if (!model || (!prompt == !prompt_ids) || (suffix && suffix_ids)) {
        fprintf(stderr, "aios: diffuse: need --model and exactly one of --prompt / --prompt-ids (see --help)\n");
        return 2;
    }
    if ((prompt && suffix_ids) || (prompt_ids && suffix)) {
        fprintf(stderr, "aios: diffuse: give prompt and suffix both as text or both as ids\n");
        return 2;
    }
    if (memory_store && !prompt) {
        fprintf(stderr, "aios: diffuse: --memory-store needs a text --prompt (it is the query)\n");
        return 2;
    }
    aios_config cfg;
    aios_status s = aios_config_load(&cfg, config);
    if (s != AIOS_OK) return aios_cli_fail("config", s);
    if (!steps_given) {
        p.steps = cfg.diffusion.num_steps;
        if (p.steps > p.gen_length && p.gen_length > 0) p.steps = (int)p.gen_length;
    }

    int32_t *pids = NULL, *sids = NULL;
    int64_t np = 0, ns = 0;
    if (prompt_ids && (np = parse_ids(prompt_ids, &pids)) < 0) {
        fprintf(stderr, "aios: diffuse: --prompt-ids: '%s' is not a comma-separated list of ids\n", prompt_ids);
        return 2;
    }
    if (suffix_ids && (ns = parse_ids(suffix_ids, &sids)) < 0) {
        fprintf(stderr, "aios: diffuse: --suffix-ids: '%s' is not a comma-separated list of ids\n", suffix_ids);
        free(pids);
        return 2;
    }
    p.uncertainty_threshold = cfg.evolution.uncertainty_threshold;
    p.memory_guided = memory_store != NULL;
    p.memory_store = memory_store;
    p.memory_encoder = memory_encoder;
    int rc = 0;
    aios_diffusion_model *m = NULL;
    aios_diffuse_result r;
    memset(&r, 0, sizeof r);
    s = aios_diffusion_model_open(model, &m);
    if (s != AIOS_OK) {
        rc = aios_cli_fail("diffuse", s);
        goto out;
    }
    const aios_denoiser *dn = aios_diffusion_model_denoiser(m);
    show_ctx sc = {dn->mask_id, isatty(2)};
    if (show) {
        p.on_step = on_step;
        p.user = &sc;
    }
    if (prompt) {
        s = aios_diffuse(m, prompt, suffix, &p, &r);
    } else {
        /* a cache sized for this canvas when the mode may use one */
        int64_t B = p.block_length ? p.block_length : (dn->block_size > 0 ? dn->block_size : p.gen_length);
        if (p.kv_cache != AIOS_KV_NONE && (p.kv_cache != AIOS_KV_AUTO || dn->attn == AIOS_DENOISE_BLOCK_CAUSAL)) {
            s = aios_diffusion_model_set_cache(m, np + B + p.gen_length + ns);
            if (s != AIOS_OK) {
                rc = aios_cli_fail("diffuse: KV cache", s);
                goto out;
            }
        }
        s = aios_diffuse_sample(dn, &p, pids, np, sids, ns, &r);
        if (s == AIOS_OK) aios_diffuse_uncertainty_flag(&r, p.uncertainty_threshold);
    }
    if (show && sc.tty) fputc('\n', stderr);
    if (s != AIOS_OK) {
        rc = aios_cli_fail("diffuse", s);
        goto out;
    }
    if (ids_out) {
        for (int64_t i = 0; i < r.n_ids; i++) printf(i ? " %d" : "%d", r.ids[i]);
        printf("\n");
    } else {
        char *text = r.text;
        if (!text && aios_diffusion_model_detokenize(m, r.ids + r.gen_start, r.gen_len, &text) != AIOS_OK) {
            /* no tokenizer: the generated ids */
            aios_clear_error();
            text = NULL;
            for (int64_t i = r.gen_start; i < r.gen_start + r.gen_len; i++)
                printf(i > r.gen_start ? " %d" : "%d", r.ids[i]);
            printf("\n");
        } else {
            printf("%s\n", text);
            if (text != r.text) free(text);
        }
    }
    for (int32_t i = 0; i < r.n_memories; i++)
        fprintf(stderr, "aios: diffuse: memory %s (similarity %.3f) placed ahead of the prompt\n", r.memory_ids[i],
                r.memory_scores[i]);
    if (stats)
        fprintf(stderr,
                "aios: diffuse: %s, %d steps, %lld forwards (%lld rows), %.3f s, %.1f tokens/s; uncertainty %.3f "
                "(entropy %.3f, 1-p %.3f)%s\n",
                aios_diffusion_model_kind(m), r.n_steps, (long long)r.n_forward, (long long)r.rows_computed, r.seconds,
                r.seconds > 0 ? (double)r.gen_len / r.seconds : 0.0, r.uncertainty, r.mean_entropy,
                r.mean_one_minus_conf, r.uncertain ? " — above evolution.uncertainty_threshold" : "");
out:
    aios_diffuse_result_free(&r);
    aios_diffusion_model_free(m);
    free(pids);
    free(sids);
    return rc;
}

/* `aios generate --mode diffusion ...` (the seed's generate(mode="diffusion")): runs `aios
 * diffuse` with the same arguments, --max-tokens read as --gen-length.  Returns -1 when the
 * arguments do not ask for diffusion (then `--mode ar`, if present, is removed in place and
 * *argc adjusted so that generate parses the rest). */
int aios_cli_generate_mode(int *argc, char **argv) {
    int mode_at = -1, diffusion = 0;
    for (int i = 1; i + 1 < *argc; i++)
        if (!strcmp(argv[i], "--mode")) {
            mode_at = i;
            diffusion = !strcmp(argv[i + 1], "diffusion");
            if (!diffusion && strcmp(argv[i + 1], "ar")) {
                fprintf(stderr, "aios: generate: --mode: '%s' is not ar or diffusion\n", argv[i + 1]);
                return 2;
            }
        }
    if (mode_at < 0) return -1;
    for (int i = mode_at; i + 2 <= *argc; i++) argv[i] = argv[i + 2]; /* drop "--mode X" */
    *argc -= 2;
    if (!diffusion) return -1;
    for (int i = 1; i < *argc; i++)
        if (!strcmp(argv[i], "--max-tokens")) argv[i] = (char *)"--gen-length";
    argv[0] = (char *)"diffuse";
    return aios_cmd_diffuse(*argc, argv);
}
