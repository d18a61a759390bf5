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

/* the number of set bits of a word */
static inline int bits_in(uint64_t x)
{
    return __builtin_popcountll(x);
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

/* The pattern of S̄ on its first g->n rows: level k's rows rows[ptr[k]:ptr[k+1]] (those
 * below n) pairwise, and the nonzeros of M₂₂ (ld × ld, row-major, symmetric). */
void graph_of(Graph *g, Py_ssize_t nlev, const int64_t *ptr, const int64_t *rows,
              const double *M22, Py_ssize_t ld)
{
    const Py_ssize_t n = g->n;
    for (Py_ssize_t k = 0; k < nlev; k++)
        for (int64_t a = ptr[k]; a < ptr[k + 1] && rows[a] < n; a++)
            for (int64_t b = ptr[k]; b < a; b++)
                set_edge(g, rows[a], rows[b]);
    for (Py_ssize_t i = 0; i < n; i++)
        for (Py_ssize_t j = 0; j < i; j++)
            if (M22[i * ld + j] != 0.0)
                set_edge(g, i, j);
}

/* A minimum-degree order of g's vertices (perm[s]: the vertex eliminated s-th; ties to the
 * lowest index).  Eliminating v joins its neighbours into a clique; g is consumed.  Returns
 * 0 when out of memory. */
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

/* The symbolic factor of the graph's matrix in its own order (g is consumed): each column j's
 * structure below the diagonal is its row's bits above j with those of its elimination-tree
 * children (the parent of j: the first of them); columns j, j + 1 share a supernode when
 * j + 1 is j's parent and j's structure is j + 1's and j + 1 itself.  Fills sn (its arrays
 * malloc'ed: free with supernodes_free); returns 0 when out of memory. */
int supernodes_of(Graph *g, Supernodes *sn)
{
    const Py_ssize_t n = g->n, words = g->words;
    memset(sn, 0, sizeof *sn);
    int64_t *cnt = malloc(sizeof(int64_t) * (n + 1)), *par = malloc(sizeof(int64_t) * (n + 1));
    if (!cnt || !par)
        goto fail;
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
    Py_ssize_t nsn = 0, nrows = 0;
    for (Py_ssize_t j = 0; j < n; j++)   /* a supernode ends at j unless j + 1 continues it */
        if (j == n - 1 || !(par[j] == j + 1 && cnt[j] == cnt[j + 1] + 1)) {
            nsn++;
            nrows += cnt[j];
        }
    sn->nsn = nsn;
    sn->start = malloc(sizeof(int64_t) * (nsn + 1));
    sn->rptr = malloc(sizeof(int64_t) * (nsn + 1));
    sn->rows = malloc(sizeof(int64_t) * (nrows > 0 ? nrows : 1));
    if (!sn->start || !sn->rptr || !sn->rows)
        goto fail;
    Py_ssize_t s = 0, at = 0;
    sn->start[0] = 0;
    sn->rptr[0] = 0;
    for (Py_ssize_t j = 0; j < n; j++)
        if (j == n - 1 || !(par[j] == j + 1 && cnt[j] == cnt[j + 1] + 1)) {
            const uint64_t *r = row_of(g, j);
            for (Py_ssize_t t = 0; t < words; t++)
                for (uint64_t x = r[t]; x; x &= x - 1)
                    sn->rows[at++] = t * 64 + __builtin_ctzll(x);
            const Py_ssize_t w = j + 1 - sn->start[s], nr = at - sn->rptr[s];
            sn->maxw = w > sn->maxw ? w : sn->maxw;
            sn->maxr = nr > sn->maxr ? nr : sn->maxr;
            sn->flops += (double)w * ((double)nr * nr + (double)w * w / 3.0 + (double)nr * w);
            sn->start[++s] = j + 1;
            sn->rptr[s] = at;
        }
    free(cnt);
    free(par);
    return 1;
fail:
    free(cnt);
    free(par);
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
