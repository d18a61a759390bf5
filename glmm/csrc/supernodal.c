/* The sparsity of an LMM's S̄ (lmm.c): its pattern, a fill-reducing order of its rows and the
 * supernodes of its Cholesky factor in a given order (docs/lmm.md §6, "The supernodal factor").
 *
 * S̄ = Λ̄₂M₂₂Λ̄₂ + E₂ − Σₖ WₖWₖᵀ is zero outside the pattern of M₂₂ and of the cliques
 * rows(k) × rows(k), one per level k of term 1 (the rows each level meets).  Where that
 * pattern is sparse (InstEval: 20% of S̄'s entries), the rows ordered by minimum degree make
 * L̄₂ sparse too (InstEval: 44% of a dense factor, 20% of its flops), and its columns fall
 * into supernodes: runs of consecutive columns j … j + w − 1 whose structure below the run is
 * one set R (each column's structure is the later columns of the run, then R).  lmm.c factors
 * S̄ and forms its selected inverse by dense blocks per supernode, in S̄'s own dense storage.
 *
 * A graph on n vertices is one bitset row per vertex (bit j of row i: edge i–j), `words`
 * 64-bit words a row. */

#include "core.h"

/* the number of set bits of a word (without the popcnt instruction, which the core is not
 * compiled for, __builtin_popcountll is a call into libgcc: this is inline) */
static inline int bits_in(uint64_t x)
{
    x -= (x >> 1) & 0x5555555555555555ULL;
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}

int graph_alloc(Graph *g, Py_ssize_t n)
{
    g->n = n;
    g->words = (n + 63) / 64;
    Py_ssize_t size = muladd(n, g->words, 1);
    g->bits = size < 0 ? NULL : calloc((size_t)size, sizeof(uint64_t));
    return g->bits != NULL;
}

void graph_free(Graph *g)
{
    free(g->bits);
    g->bits = NULL;
}

static inline uint64_t *row_of(const Graph *g, Py_ssize_t i)
{
    return g->bits + i * g->words;
}

static inline void set_edge(Graph *g, Py_ssize_t i, Py_ssize_t j)
{
    row_of(g, i)[j >> 6] |= (uint64_t)1 << (j & 63);
    row_of(g, j)[i >> 6] |= (uint64_t)1 << (i & 63);
}

/* The pattern of S̄ on its first g->n rows: level k's rows rows[ptr[k]:ptr[k+1]] (increasing;
 * those below n) pairwise, and the nonzeros of M₂₂ (ld × ld, row-major, symmetric; NULL:
 * none). */
void graph_of(Graph *g, Py_ssize_t nlev, const int64_t *ptr, const int64_t *rows,
              const double *M22, Py_ssize_t ld)
{
    const Py_ssize_t n = g->n;
    for (Py_ssize_t k = 0; k < nlev; k++)
        for (int64_t a = ptr[k]; a < ptr[k + 1] && rows[a] < n; a++)
            for (int64_t b = ptr[k]; b < a; b++)
                set_edge(g, rows[a], rows[b]);
    for (Py_ssize_t i = 0; M22 && i < n; i++)
        for (Py_ssize_t j = 0; j < i; j++)
            if (M22[i * ld + j] != 0.0)
                set_edge(g, i, j);
}

/* A minimum-degree order of g's vertices (perm[s]: the vertex eliminated s-th; ties to the
 * lowest index).  Eliminating v joins its neighbours into a clique; once the live vertices
 * are a clique they follow in index order.  g is consumed.  Returns 0 when out of memory. */
int min_degree(Graph *g, int64_t *perm)
{
    const Py_ssize_t n = g->n, words = g->words;
    int64_t *deg = malloc(sizeof(int64_t) * (n > 0 ? n : 1));
    if (!deg)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint64_t *r = row_of(g, i);
        int64_t d = 0;
        for (Py_ssize_t t = 0; t < words; t++)
            d += bits_in(r[t]);
        deg[i] = d;
    }
    /* rows hold live vertices only: a vertex's bit leaves its neighbours' rows as it goes */
    for (Py_ssize_t s = 0; s < n; s++) {
        Py_ssize_t v = -1;
        for (Py_ssize_t i = 0; i < n; i++)
            if (deg[i] >= 0 && (v < 0 || deg[i] < deg[v]))
                v = i;
        if (deg[v] == n - 1 - s) {   /* the rest is a clique: it goes in index order */
            for (Py_ssize_t i = 0; i < n; i++)
                if (deg[i] >= 0)
                    perm[s++] = i;
            break;
        }
        perm[s] = v;
        deg[v] = -1;
        const uint64_t *rv = row_of(g, v);
        for (Py_ssize_t t = 0; t < words; t++)
            for (uint64_t x = rv[t]; x; x &= x - 1) {
                const Py_ssize_t u = t * 64 + __builtin_ctzll(x);
                uint64_t *ru = row_of(g, u);
                int64_t d = 0;
                for (Py_ssize_t e = 0; e < words; e++) {
                    ru[e] |= rv[e];
                    if (e == (u >> 6))
                        ru[e] &= ~((uint64_t)1 << (u & 63));
                    if (e == (v >> 6))
                        ru[e] &= ~((uint64_t)1 << (v & 63));
                    d += bits_in(ru[e]);
                }
                deg[u] = d;
            }
    }
    free(deg);
    return 1;
}

/* The symbolic factor of the graph's matrix in its own order (g is consumed; row j then holds
 * column j's structure below the diagonal): column j's structure is its row's bits above j
 * with those of its elimination-tree children, less j; its parent (par[j], -1 for a root) is
 * the first of them, cnt[j] their number. */
static void symbolic(Graph *g, int64_t *cnt, int64_t *par)
{
    const Py_ssize_t n = g->n, words = g->words;
    for (Py_ssize_t j = 0; j < n; j++) {
        uint64_t *r = row_of(g, j);
        for (Py_ssize_t t = 0; t <= (j >> 6); t++)   /* keep the bits above j */
            r[t] &= t < (j >> 6) ? 0 : ~(uint64_t)0 << (j & 63) << 1;
        int64_t c = 0, parent = -1;
        for (Py_ssize_t t = 0; t < words; t++) {
            if (parent < 0 && r[t])
                parent = t * 64 + __builtin_ctzll(r[t]);
            c += bits_in(r[t]);
        }
        cnt[j] = c;
        par[j] = parent;
        if (parent >= 0) {   /* the parent's structure takes j's, less the parent itself */
            uint64_t *rp = row_of(g, parent);
            for (Py_ssize_t t = 0; t < words; t++)
                rp[t] |= r[t];
            rp[parent >> 6] &= ~((uint64_t)1 << (parent & 63));
        }
    }
}

/* A postorder of the elimination tree of g's matrix (g is consumed): order[i], the vertex at
 * position i, children (in increasing order) before their parent, each subtree contiguous.
 * Relabelled so, the matrix has the same fill, and a parent follows its last child, so that
 * supernodes along a chain of the tree are consecutive.  0 when out of memory. */
int etree_postorder(Graph *g, int64_t *order)
{
    const Py_ssize_t n = g->n;
    int64_t *cnt = malloc(sizeof(int64_t) * (n + 1)), *par = malloc(sizeof(int64_t) * (n + 1));
    int64_t *head = malloc(sizeof(int64_t) * (n + 1)), *next = malloc(sizeof(int64_t) * (n + 1));
    int64_t *stack = malloc(sizeof(int64_t) * (n + 1));
    int ok = cnt && par && head && next && stack;
    if (ok) {
        symbolic(g, cnt, par);
        for (Py_ssize_t j = 0; j <= n; j++)   /* child lists, increasing: head[n] the roots' */
            head[j] = -1;
        for (Py_ssize_t j = n - 1; j >= 0; j--) {
            const int64_t p = par[j] >= 0 ? par[j] : n;
            next[j] = head[p];
            head[p] = j;
        }
        Py_ssize_t at = 0, top = 0;
        for (int64_t r = head[n]; r >= 0; r = next[r]) {   /* each root's subtree, depth first */
            stack[top++] = r;
            while (top) {
                const int64_t v = stack[top - 1];
                if (head[v] >= 0) {   /* descend to its next unvisited child */
                    const int64_t c = head[v];
                    head[v] = next[c];
                    stack[top++] = c;
                } else {
                    order[at++] = v;
                    top--;
                }
            }
        }
    }
    free(cnt);
    free(par);
    free(head);
    free(next);
    free(stack);
    return ok;
}

/* The supernodes of the graph's matrix's factor in its own order (g is consumed).  Columns
 * j, j + 1 share a fundamental supernode when j + 1 is j's parent and j's structure is j + 1
 * and j + 1's; then a supernode joins the next one when its last column's parent is among the
 * next one's columns (so that its structure lies in the next one's columns and structure) and
 * at most MAX_ZEROS of the joined block's entries are zeros of L (L is exactly zero there,
 * and stays so in the factor; the fewer, larger blocks save S̄'s scattered updates).  Fills sn
 * (its arrays malloc'ed: free with supernodes_free); returns 0 when out of memory. */
#define MAX_ZEROS 0.2
int supernodes_of(Graph *g, Supernodes *sn)
{
    const Py_ssize_t n = g->n, words = g->words;
    memset(sn, 0, sizeof *sn);
    int64_t *cnt = malloc(sizeof(int64_t) * (n + 1)), *par = malloc(sizeof(int64_t) * (n + 1));
    int64_t *ends = malloc(sizeof(int64_t) * (n + 1));
    if (!cnt || !par || !ends)
        goto fail;
    symbolic(g, cnt, par);
    Py_ssize_t nsn = 0, nrows = 0;
    for (Py_ssize_t j = 0, s0 = 0; j < n; j++) {
        if (j < n - 1 && par[j] == j + 1 && cnt[j] == cnt[j + 1] + 1)
            continue;   /* j + 1 continues the fundamental supernode */
        if (nsn > 0) {   /* join the previous block (columns s0 … start − 1) to this one? */
            const Py_ssize_t a = s0, last = ends[nsn - 1];
            if (par[last] > last && par[last] <= j) {
                double total = 0.0, real = 0.0;
                for (Py_ssize_t c = a; c <= j; c++) {
                    total += (double)(j - c) + (double)cnt[j];
                    real += (double)cnt[c];
                }
                if (total - real <= MAX_ZEROS * total) {
                    ends[nsn - 1] = j;
                    continue;
                }
            }
            s0 = last + 1;
        }
        ends[nsn++] = j;
    }
    for (Py_ssize_t s = 0; s < nsn; s++)
        nrows += cnt[ends[s]];
    sn->nsn = nsn;
    sn->start = malloc(sizeof(int64_t) * (nsn + 1));
    sn->rptr = malloc(sizeof(int64_t) * (nsn + 1));
    sn->rows = malloc(sizeof(int64_t) * (nrows > 0 ? nrows : 1));
    if (!sn->start || !sn->rptr || !sn->rows)
        goto fail;
    Py_ssize_t at = 0;
    sn->start[0] = 0;
    sn->rptr[0] = 0;
    for (Py_ssize_t s = 0; s < nsn; s++) {   /* its structure: its last column's */
        const uint64_t *r = row_of(g, ends[s]);
        for (Py_ssize_t t = 0; t < words; t++)
            for (uint64_t x = r[t]; x; x &= x - 1)
                sn->rows[at++] = t * 64 + __builtin_ctzll(x);
        sn->start[s + 1] = ends[s] + 1;
        sn->rptr[s + 1] = at;
        const Py_ssize_t w = sn->start[s + 1] - sn->start[s], nr = at - sn->rptr[s];
        sn->maxw = w > sn->maxw ? w : sn->maxw;
        sn->maxr = nr > sn->maxr ? nr : sn->maxr;
        sn->flops += (double)w * ((double)nr * nr + (double)w * w / 3.0 + (double)nr * w);
    }
    free(cnt);
    free(par);
    free(ends);
    return 1;
fail:
    free(cnt);
    free(par);
    free(ends);
    supernodes_free(sn);
    return 0;
}

void supernodes_free(Supernodes *sn)
{
    free(sn->start);
    free(sn->rptr);
    free(sn->rows);
    sn->start = sn->rptr = sn->rows = NULL;
}
