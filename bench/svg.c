/*
 * svg: the chart writers; see svg.h.
 *
 * A panel maps data coordinates onto a plot rectangle; every chart is a
 * few panels with grid lines, tick labels, axis titles with units, a
 * legend and polylines. Linear axes start at zero and end at a "nice"
 * value (1, 2 or 5 times a power of ten) so the grid reads easily. The
 * percentile axis plots x = log10(1 / (1 - p)), the HdrHistogram
 * convention, so 90%, 99%, 99.9% and 99.99% are evenly spaced and the
 * tail, where the interesting latencies are, gets most of the width.
 */
#include "svg.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define WIDTH      960
#define PANEL_H    430
#define HEAD_H     60
#define M_LEFT     90
#define M_RIGHT    40
#define M_TOP      40
#define M_BOTTOM   60
#define PCT_POINTS 400

#define C_COR "#1f77b4"
#define C_UNC "#ff7f0e"
#define C_P50 "#2ca02c"
#define C_P99 "#d62728"

struct panel {
    double x0, y0, w, h;       /* plot area, px */
    double xlo, xhi, ylo, yhi; /* data range */
};

static double px(const struct panel *p, double x)
{
    return p->x0 + (x - p->xlo) / (p->xhi - p->xlo) * p->w;
}

static double py(const struct panel *p, double y)
{
    return p->y0 + p->h - (y - p->ylo) / (p->yhi - p->ylo) * p->h;
}

/* A step of 1, 2 or 5 times a power of ten giving about five ticks. */
static double nice_step(double range)
{
    double raw = range / 5.0;
    double mag = pow(10.0, floor(log10(raw)));
    double r = raw / mag;

    return (r <= 1.0 ? 1.0 : r <= 2.0 ? 2.0 : r <= 5.0 ? 5.0 : 10.0) * mag;
}

static double nice_ceil(double v)
{
    if (!(v > 0.0))
        return 1.0;
    double step = nice_step(v);
    return ceil(v / step - 1e-9) * step;
}

static void esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* 1500 -> "1.5k", 2000000 -> "2M": throughput labels stay short. */
static void fmt_num(char *buf, size_t len, double v)
{
    if (v >= 1e6)
        snprintf(buf, len, "%gM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, len, "%gk", v / 1e3);
    else
        snprintf(buf, len, "%g", v);
}

static void begin(FILE *f, int height, const char *title, const char *sub)
{
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
            "font-size=\"12\">\n<title>",
            WIDTH, height, WIDTH, height);
    esc(f, title);
    fprintf(f,
            "</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" "
            "fill=\"white\"/>\n<text x=\"%d\" y=\"24\" font-size=\"16\" "
            "font-weight=\"bold\">",
            WIDTH, height, M_LEFT);
    esc(f, title);
    fprintf(f, "</text>\n<text x=\"%d\" y=\"44\" fill=\"#555\">", M_LEFT);
    esc(f, sub);
    fputs("</text>\n", f);
}

static struct panel panel_at(double top)
{
    return (struct panel){
        .x0 = M_LEFT,
        .y0 = top + M_TOP,
        .w = WIDTH - M_LEFT - M_RIGHT,
        .h = PANEL_H - M_TOP - M_BOTTOM,
    };
}

/* Border, title, axis titles, and horizontal grid with y labels. */
static void frame(FILE *f, const struct panel *p, const char *title,
                  const char *xlabel, const char *ylabel)
{
    fprintf(f,
            "<g>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\">%s"
            "</text>\n",
            p->x0, p->y0 - 12, title);
    double step = nice_step(p->yhi - p->ylo);
    for (double y = p->ylo; y <= p->yhi + step * 1e-6; y += step) {
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#ddd\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
                "text-anchor=\"end\">%g</text>\n",
                p->x0, py(p, y), p->x0 + p->w, py(p, y), p->x0 - 6,
                py(p, y) + 4, y);
    }
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
            "fill=\"none\" stroke=\"#333\"/>\n",
            p->x0, p->y0, p->w, p->h);
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s"
            "</text>\n",
            p->x0 + p->w / 2, p->y0 + p->h + 40, xlabel);
    fprintf(f,
            "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" "
            "text-anchor=\"middle\">%s</text>\n</g>\n",
            p->x0 - 60, p->y0 + p->h / 2, ylabel);
}

static void xtick(FILE *f, const struct panel *p, double x, const char *l)
{
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#ddd\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
            "text-anchor=\"middle\">%s</text>\n",
            px(p, x), p->y0, px(p, x), p->y0 + p->h, px(p, x),
            p->y0 + p->h + 18, l);
}

static void xticks_linear(FILE *f, const struct panel *p)
{
    double step = nice_step(p->xhi - p->xlo);

    for (double x = p->xlo; x <= p->xhi + step * 1e-6; x += step) {
        char l[32];
        fmt_num(l, sizeof(l), x);
        xtick(f, p, x, l);
    }
}

static void polyline(FILE *f, const struct panel *p, const double *xs,
                     const double *ys, size_t n, const char *color, bool dashed)
{
    fprintf(f,
            "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s "
            "points=\"",
            color, dashed ? " stroke-dasharray=\"6,4\"" : "");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%.1f,%.1f", i ? " " : "", px(p, xs[i]), py(p, ys[i]));
    fputs("\"/>\n", f);
}

static void legend(FILE *f, const struct panel *p, int i, const char *color,
                   bool dashed, const char *label)
{
    double x = p->x0 + 14;
    double y = p->y0 + 16 + 18 * i;

    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"%s\" stroke-width=\"2\"%s/>\n<text x=\"%.1f\" "
            "y=\"%.1f\">%s</text>\n",
            x, y, x + 26, y, color, dashed ? " stroke-dasharray=\"6,4\"" : "",
            x + 32, y + 4, label);
}

static int done(FILE *f)
{
    fputs("</svg>\n", f);
    return ferror(f) ? -EIO : 0;
}

/* The latency at p in ms; above 1 hour, the exact max stands in. */
static double ms_at(const struct hist *h, double p)
{
    double ms = report_ms(h, p);

    return ms < 0 ? (double)hist_max(h) / 1e6 : ms;
}

static void subtitle(char *buf, size_t len, const struct bench_opts *o,
                     const struct stats *st)
{
    snprintf(buf, len,
             "%s on %s:%u, %u connections, pipeline %u, %s; "
             "%llu %ss at %.1f/s, %llu errors",
             opts_workload_name(o->workload), o->host, o->port, o->connections,
             o->pipeline, st->target_rate ? "open loop" : "closed loop",
             (unsigned long long)st->ops, opts_op_unit(o->workload),
             stats_rate(st), (unsigned long long)stats_errors(st));
}

static void percentile_panel(FILE *f, const struct stats *st, double top)
{
    static const char *const labels[] = {
        "0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%",
    };
    double xs[PCT_POINTS + 1], yc[PCT_POINTS + 1], yu[PCT_POINTS + 1];
    uint64_t n = hist_count(st->corrected);
    /* Show the decades the data can resolve, 99.99% at least. */
    double xmax = n > 1 ? floor(log10((double)n)) : 4.0;
    xmax = xmax < 4.0 ? 4.0 : xmax > 6.0 ? 6.0 : xmax;
    double ymax = 0.0;

    for (int i = 0; i <= PCT_POINTS; i++) {
        xs[i] = xmax * i / PCT_POINTS;
        double p = 100.0 * (1.0 - pow(10.0, -xs[i]));
        yc[i] = ms_at(st->corrected, p);
        yu[i] = ms_at(st->uncorrected, p);
        ymax = fmax(ymax, fmax(yc[i], yu[i]));
    }
    struct panel p = panel_at(top);
    p.xlo = 0.0;
    p.xhi = xmax;
    p.ylo = 0.0;
    p.yhi = nice_ceil(ymax);
    frame(f, &p, "Latency by percentile", "percentile", "latency (ms)");
    for (int d = 0; d <= (int)xmax; d++)
        xtick(f, &p, d, labels[d]);
    xtick(f, &p, log10(2.0), "50%");
    polyline(f, &p, xs, yc, PCT_POINTS + 1, C_COR, false);
    polyline(f, &p, xs, yu, PCT_POINTS + 1, C_UNC, true);
    legend(f, &p, 0, C_COR, false, "corrected (from due time)");
    legend(f, &p, 1, C_UNC, true, "uncorrected (from send time)");
}

static void series_panel(FILE *f, const struct stats *st, double top)
{
    struct panel p = panel_at(top);
    size_t n = st->nseries;
    double ymax = 0.0;

    for (size_t i = 0; i < n; i++)
        ymax = fmax(ymax, (double)st->series[i].p99 / 1e6);
    p.xlo = 0.0;
    p.xhi = n > 1 ? (double)n : 1.0;
    p.ylo = 0.0;
    p.yhi = nice_ceil(ymax);
    frame(f, &p, "Latency per second (corrected)", "time after warmup (s)",
          "latency (ms)");
    xticks_linear(f, &p);
    if (n == 0) {
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
                "no measured second</text>\n",
                p.x0 + p.w / 2, p.y0 + p.h / 2);
        return;
    }
    double *xs = malloc(3 * n * sizeof(double));
    if (!xs)
        return;
    double *y50 = xs + n, *y99 = xs + 2 * n;
    for (size_t i = 0; i < n; i++) {
        const struct stats_point *sp = &st->series[i];
        xs[i] = (double)sp->second;
        /* An empty second reads 0; one above 1 hour, the top. */
        y50[i] = sp->p50 == HIST_OVERFLOW ? ymax : (double)sp->p50 / 1e6;
        y99[i] = sp->p99 == HIST_OVERFLOW ? ymax : (double)sp->p99 / 1e6;
    }
    polyline(f, &p, xs, y99, n, C_P99, false);
    polyline(f, &p, xs, y50, n, C_P50, false);
    free(xs);
    legend(f, &p, 0, C_P99, false, "p99");
    legend(f, &p, 1, C_P50, false, "p50");
}

int svg_run(FILE *f, const struct bench_opts *o, const struct stats *st)
{
    char sub[512];

    subtitle(sub, sizeof(sub), o, st);
    begin(f, HEAD_H + 2 * PANEL_H, "ratelimmq-bench latency", sub);
    percentile_panel(f, st, HEAD_H);
    series_panel(f, st, HEAD_H + PANEL_H);
    return done(f);
}

static void marker(FILE *f, const struct panel *p, double x, double y,
                   const char *color, const struct stats *st, const char *what)
{
    fprintf(f,
            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\">"
            "<title>target %llu/s: achieved %.1f/s, %s %.3f ms</title>"
            "</circle>\n",
            px(p, x), py(p, y), color, (unsigned long long)st->target_rate,
            stats_rate(st), what, y);
}

int svg_sweep(FILE *f, const struct bench_opts *o, const struct stats *runs,
              size_t n)
{
    char sub[512];
    char xlabel[64];
    double xmax = 0.0, ymax = 0.0;

    snprintf(sub, sizeof(sub),
             "%s on %s:%u, %u connections, pipeline %u, "
             "open loop, %zu rates",
             opts_workload_name(o->workload), o->host, o->port, o->connections,
             o->pipeline, n);
    snprintf(xlabel, sizeof(xlabel), "achieved throughput (%ss/s)",
             opts_op_unit(o->workload));
    begin(f, HEAD_H + PANEL_H, "ratelimmq-bench latency vs throughput", sub);
    double *xs = malloc(3 * (n ? n : 1) * sizeof(double));
    if (!xs)
        return -ENOMEM;
    double *y50 = xs + n, *y99 = xs + 2 * n;
    for (size_t i = 0; i < n; i++) {
        xs[i] = stats_rate(&runs[i]);
        y50[i] = ms_at(runs[i].corrected, 50.0);
        y99[i] = ms_at(runs[i].corrected, 99.0);
        xmax = fmax(xmax, xs[i]);
        ymax = fmax(ymax, y99[i]);
    }
    struct panel p = panel_at(HEAD_H);
    p.xlo = 0.0;
    p.xhi = nice_ceil(xmax);
    p.ylo = 0.0;
    p.yhi = nice_ceil(ymax);
    frame(f, &p,
          "Corrected latency against throughput, one point per "
          "--sweep rate",
          xlabel, "latency (ms)");
    xticks_linear(f, &p);
    polyline(f, &p, xs, y99, n, C_P99, false);
    polyline(f, &p, xs, y50, n, C_P50, false);
    for (size_t i = 0; i < n; i++) {
        marker(f, &p, xs[i], y99[i], C_P99, &runs[i], "p99");
        marker(f, &p, xs[i], y50[i], C_P50, &runs[i], "p50");
    }
    free(xs);
    legend(f, &p, 0, C_P99, false, "p99");
    legend(f, &p, 1, C_P50, false, "p50");
    return done(f);
}
