## R side of the design fixtures (scripts/generate_design_fixtures.py): what lme4's glFormula()
## makes of a formula and a data.frame -- the parsed formula, the model frame, X, Zt, Lambdat,
## theta, names and orders -- returned as plain lists for parity.r_bridge.to_python().
##
## Sourced after glmer_case.R (it uses that file's .S, parity_in_c_locale, parity_capture and
## .lower_na).  Everything runs in the C locale, so character levels sort by bytes.

## A dgCMatrix as 0-based triplets in its own (column-major) storage order.
.design_triplets <- function(m, values = TRUE) {
  m <- as(m, "CsparseMatrix")
  j <- rep(seq_len(ncol(m)) - 1L, diff(m@p))
  out <- list(i = as.integer(m@i), j = as.integer(j), dim = as.integer(dim(m)))
  if (values) out$x <- as.numeric(m@x)
  out
}

## model.response() in a form that survives the trip to Python.
.design_response <- function(y) {
  if (is.factor(y)) {
    return(list(type = .S("factor"), levels = as.character(levels(y)),
                codes = as.integer(y) - 1L))
  }
  if (is.matrix(y)) {
    return(list(type = .S("matrix"), values = lapply(seq_len(ncol(y)), function(j) as.numeric(y[, j]))))
  }
  if (is.logical(y)) return(list(type = .S("logical"), values = as.logical(y)))
  if (is.character(y)) return(list(type = .S("character"), values = as.character(y)))
  list(type = .S("numeric"), values = as.numeric(y))
}

## The parts of the formula as lme4 sees them: response, nobars() of the right-hand side,
## findbars() (after || and / expansion) and the expressions inside offset() terms.
.design_parsed <- function(form) {
  rhs <- form[[length(form)]]
  tt <- terms(subbars(form))
  vars <- attr(tt, "variables")
  off <- attr(tt, "offset")
  list(
    response = .S(deparse1(form[[2]])),
    fixed = .S(deparse1(nobars(rhs))),
    bars = vapply(findbars(form), deparse1, ""),
    offsets = vapply(off, function(i) deparse1(vars[[i + 1L]][[2]]), "")
  )
}

## glFormula() on the data with weights/offset given as column names; everything it built.
## `as_character` names factor columns to turn into character vectors first; `family` is
## used only for the optional mkRespMod() check (`check_resp`).
design_case <- function(data, formula, weights = NULL, offset = NULL,
                        as_character = character(0), family = "binomial",
                        check_resp = FALSE) {
  parity_in_c_locale({
    for (nm in as_character) data[[nm]] <- as.character(data[[nm]])
    fam <- get(family, mode = "function")()
    form <- stats::as.formula(formula)
    cl <- call("glFormula", formula = form, data = quote(data), family = quote(fam))
    if (!is.null(weights)) cl$weights <- as.name(weights)
    if (!is.null(offset)) cl$offset <- as.name(offset)
    parsed <- tryCatch(.design_parsed(form), error = function(e) NULL)
    cap <- tryCatch(parity_capture(eval(cl)), error = function(e) e)
    if (inherits(cap, "error")) {
      return(list(error = .S(conditionMessage(cap)), parsed = parsed))
    }
    gl <- cap$value
    fr <- gl$fr
    resp_error <- NULL
    if (isTRUE(check_resp)) {
      resp_error <- tryCatch({
        lme4:::mkRespMod(fr, family = fam)
        NULL
      }, error = function(e) .S(conditionMessage(e)))
    }
    X <- gl$X
    dropped <- attr(X, "col.dropped")
    rt <- gl$reTrms
    fl <- rt$flist
    pfun <- lme4:::mkPfun()
    list(
      error = NULL,
      resp_error = resp_error,
      parsed = parsed,
      nrow = .S(nrow(fr)),
      rows = as.integer(rownames(fr)) - 1L,
      response = .design_response(model.response(fr)),
      weights = if (is.null(w <- model.weights(fr))) NULL else as.numeric(w),
      offset = if (is.null(o <- model.offset(fr))) NULL else as.numeric(o),
      X = list(
        names = as.character(colnames(X)),
        columns = lapply(seq_len(ncol(X)), function(j) as.numeric(X[, j])),
        dropped = if (is.null(dropped)) character(0) else as.character(names(dropped)),
        messages = as.character(c(cap$messages, cap$warnings))
      ),
      reTrms = list(
        term_names = as.character(names(rt$Ztlist)),
        cnms = lapply(seq_along(rt$cnms), function(k)
          list(group = .S(names(rt$cnms)[k]), columns = as.character(rt$cnms[[k]]))),
        nl = as.integer(rt$nl),
        Gp = as.integer(rt$Gp),
        theta = as.numeric(rt$theta),
        lower = .lower_na(rt$lower),
        theta_names = as.character(unlist(mapply(pfun, names(rt$cnms), rt$cnms))),
        Lind = as.integer(rt$Lind),
        Lambdat = .design_triplets(rt$Lambdat, values = FALSE),
        Zt = .design_triplets(rt$Zt),
        flist = lapply(names(fl), function(g)
          list(name = .S(g), levels = as.character(levels(fl[[g]])),
               codes = as.integer(fl[[g]]) - 1L)),
        assign = as.integer(attr(fl, "assign"))
      )
    )
  })
}

## deparse1() of each expression parsed from text (checks the Python deparser).
design_deparse <- function(exprs) {
  vapply(exprs, function(e) deparse1(str2lang(e)), "", USE.NAMES = FALSE)
}

## as.character() of each double (factor labels of numeric grouping variables).
design_as_character <- function(x) as.character(as.numeric(x))

## terms() of `~ rhs` for each rhs: variables, term labels, intercept, offsets and the
## factor-coding pattern (variables x terms, 0/1/2), as stats::terms.formula computes them.
design_terms <- function(rhs) {
  lapply(rhs, function(r) {
    tt <- terms(stats::as.formula(paste("~", r)))
    fac <- attr(tt, "factors")
    vars <- vapply(as.list(attr(tt, "variables"))[-1L], deparse1, "")
    list(
      rhs = .S(r),
      variables = vars,
      labels = as.character(attr(tt, "term.labels")),
      intercept = .S(as.integer(attr(tt, "intercept"))),
      offsets = as.integer(if (is.null(attr(tt, "offset"))) integer(0) else attr(tt, "offset") - 1L),
      factors = if (length(fac)) lapply(seq_len(ncol(fac)), function(j) as.integer(fac[, j])) else list(),
      factor_rows = if (length(fac)) as.character(rownames(fac)) else character(0)
    )
  })
}

## contr.poly(n) for each n, as columns.
design_contr_poly <- function(ns) {
  lapply(ns, function(n) {
    m <- contr.poly(n)
    list(n = .S(as.integer(n)), names = as.character(colnames(m)),
         columns = lapply(seq_len(ncol(m)), function(j) as.numeric(m[, j])))
  })
}
