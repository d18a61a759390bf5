## R side of the parity bridge: fit one case in lme4 (glmer, or lmer) and return plain lists.
##
## A spec names its method (spec$method: "glmer" or "lmer"; "glmer.nb" is refused until the
## bridge computes its probes at a fixed negative-binomial theta).  The variant argument
## (`setting` below) is the nAGQ for glmer and the REML flag for lmer.
##
## Every function here returns a named list whose leaves are atomic vectors or matrices.
## Scalars are tagged with the attribute "parity_scalar" so that the Python converter can
## unbox them; everything else stays an array, even when it has length one.
## The Python side (parity/r_bridge.py) sources this file once per R session.

suppressPackageStartupMessages({
  library(lme4)
  library(Matrix)
})

.S <- function(x) {
  if (is.null(x) || length(x) != 1L) stop("internal: .S() takes a length-one value")
  attr(x, "parity_scalar") <- TRUE
  x
}

## Run expr with every locale category set to "C", then restore the previous locale.
parity_in_c_locale <- function(expr) {
  old <- Sys.getlocale("LC_COLLATE")
  oldc <- Sys.getlocale("LC_CTYPE")
  Sys.setlocale("LC_COLLATE", "C")
  Sys.setlocale("LC_CTYPE", "C")
  on.exit({
    Sys.setlocale("LC_COLLATE", old)
    Sys.setlocale("LC_CTYPE", oldc)
  })
  force(expr)
}

## Evaluate expr, collecting (and muffling) every warning and message it raises.
parity_capture <- function(expr) {
  warns <- character(0)
  msgs <- character(0)
  value <- withCallingHandlers(
    expr,
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      msgs <<- c(msgs, sub("\n$", "", conditionMessage(m)))
      invokeRestart("muffleMessage")
    }
  )
  list(value = value, warnings = warns, messages = msgs)
}

parity_versions <- function() {
  list(
    r_version = .S(paste(R.version$major, R.version$minor, sep = ".")),
    r_version_string = .S(R.version.string),
    lme4_version = .S(as.character(packageVersion("lme4"))),
    matrix_version = .S(as.character(packageVersion("Matrix"))),
    minqa_version = .S(as.character(packageVersion("minqa"))),
    platform = .S(R.version$platform),
    blas = .S(if (is.null(extSoftVersion()[["BLAS"]])) "" else extSoftVersion()[["BLAS"]]),
    la_library = .S(La_library())
  )
}

## The family object for a (family, link) pair named as in R.
parity_family <- function(family, link) {
  fam <- switch(family,
    binomial = stats::binomial,
    poisson = stats::poisson,
    Gamma = stats::Gamma,
    inverse.gaussian = stats::inverse.gaussian,
    gaussian = stats::gaussian,
    stop("unsupported family: ", family)
  )
  fam(link = link)
}

## The method of a spec; glmer when none is named.
parity_method <- function(spec) {
  m <- if (is.null(spec$method)) "glmer" else spec$method
  if (!(m %in% c("glmer", "lmer")))
    stop("method ", m, " is not fitted by this bridge yet (glmer and lmer are)")
  m
}

## The formula of a spec, from its text, without evaluating anything the text calls.  The
## Python side has already checked the text with glmm's parser (parity/trust.py); this checks
## R's own parse of it: one expression, a two-sided `~`, and every call to a function named
## in `functions` (the same whitelist, sent with the spec).  Only then is the `~` evaluated,
## which makes the formula object and calls nothing else.
parity_formula <- function(text, functions) {
  if (!is.character(text) || length(text) != 1L) stop("the formula must be one string")
  if (!is.character(functions) || !length(functions)) stop("internal: no function whitelist")
  exprs <- parse(text = text, keep.source = FALSE)
  if (length(exprs) != 1L) stop("the formula text holds ", length(exprs), " expressions")
  e <- exprs[[1L]]
  if (!is.call(e) || !identical(e[[1L]], as.name("~")) || length(e) != 3L)
    stop("not a two-sided formula: ", text)
  check <- function(x) {
    if (is.call(x)) {
      head <- x[[1L]]
      if (!is.name(head) || !(as.character(head) %in% functions))
        stop("the formula calls ", deparse(head)[1L], ", which is not in the whitelist")
      args <- as.list(x)[-1L]
      for (i in seq_along(args)) check(args[[i]])
    } else if (!(is.name(x) || is.atomic(x))) {
      stop("the formula holds an object of type ", typeof(x))
    }
  }
  check(e)
  f <- eval(e, baseenv())  # `~` is primitive: it evaluates none of its arguments
  environment(f) <- parent.frame()
  f
}

## Build a glmer()/glFormula() or lmer()/lFormula() call on `data` for the case spec.
## Weights and offset are column names, so they are looked up in `data` exactly as a user
## would write them.  `setting` is the nAGQ (glmer) or the REML flag (lmer).
parity_call <- function(fun, spec, setting, control) {
  cl <- call(fun, formula = parity_formula(spec$formula, spec$functions), data = quote(data))
  if (fun %in% c("glmer", "glFormula")) cl$family <- quote(fam)
  if (!is.null(spec$weights)) cl$weights <- as.name(spec$weights)
  if (!is.null(spec$offset)) cl$offset <- as.name(spec$offset)
  if (fun == "glmer") cl$nAGQ <- as.integer(setting)
  if (fun %in% c("lmer", "lFormula")) cl$REML <- isTRUE(setting)
  if (fun %in% c("glmer", "lmer")) cl$control <- control
  cl
}

## lower bounds with -Inf written as NA (JSON null)
.lower_na <- function(l) {
  l <- as.numeric(l)
  l[!is.finite(l)] <- NA
  l
}

.named <- function(x) list(names = as.character(names(x)), values = unname(as.numeric(x)))

.matrix_named <- function(m) {
  m <- as.matrix(m)
  list(names = as.character(colnames(m)), values = unname(m))
}

.ranef_list <- function(fit) {
  re <- parity_capture(ranef(fit, condVar = TRUE))$value
  out <- list()
  for (g in names(re)) {
    df <- re[[g]]
    pv <- attr(df, "postVar")
    blocks <- list()
    if (is.list(pv)) {
      ## several terms share this grouping factor: one block per term
      for (k in seq_along(pv)) {
        arr <- pv[[k]]
        blocks[[k]] <- list(columns = as.character(names(pv)[k]), values = .cv_array(arr))
      }
      if (is.null(names(pv))) stop("internal: unnamed condVar blocks")
    } else if (!is.null(pv)) {
      blocks[[1]] <- list(columns = as.character(colnames(df)), values = .cv_array(pv))
    }
    out[[g]] <- list(
      levels = as.character(rownames(df)),
      columns = as.character(colnames(df)),
      values = unname(as.matrix(df)),
      condVar = blocks
    )
  }
  out
}

## p x p x l array -> list of l p x p matrices (as nested rows)
.cv_array <- function(arr) {
  d <- dim(arr)
  lapply(seq_len(d[3]), function(j) matrix(arr[, , j], d[1], d[2]))
}

.varcorr_list <- function(fit) {
  vc <- VarCorr(fit)
  lapply(names(vc), function(g) {
    m <- vc[[g]]
    list(
      group = .S(g),
      names = as.character(colnames(m)),
      sd = unname(as.numeric(attr(m, "stddev"))),
      corr = unname(as.matrix(attr(m, "correlation")))
    )
  })
}

## Everything the harness keeps from a fitted glmerMod or lmerMod.  `dev` is the optimised
## criterion (the REML criterion of a REML fit); `deviance` is deviance() (for an lmer fit,
## the ML deviance at its estimates, deviance(fit, REML = FALSE)).
parity_summarize_fit <- function(fit, captured, kind) {
  ext <- parity_capture({
    ll <- logLik(fit)
    cmp <- fit@devcomp$cmp
    is_lmm <- isLMM(fit)
    reml <- is_lmm && isREML(fit)
    theta <- getME(fit, "theta")
    X <- getME(fit, "X")
    dropped <- attr(X, "col.dropped")
    vc <- tryCatch(.matrix_named(vcov(fit)), error = function(e) NULL)
    list(
      fixef = .named(fixef(fit)),
      theta = list(names = as.character(names(theta)), values = unname(as.numeric(theta)),
                   lower = .lower_na(getME(fit, "lower"))),
      u = as.numeric(getME(fit, "u")),
      b = as.numeric(getME(fit, "b")),
      ranef = .ranef_list(fit),
      deviance = .S(if (is_lmm) deviance(fit, REML = FALSE) else deviance(fit)),
      dev = .S(unname(cmp[[if (reml) "REML" else "dev"]])),
      minus2loglik = .S(-2 * as.numeric(ll)),
      loglik = .S(as.numeric(ll)),
      aic = .S(AIC(fit)),
      bic = .S(BIC(fit)),
      df = .S(as.integer(attr(ll, "df"))),
      nobs = .S(as.integer(nobs(fit))),
      sigma = .S(sigma(fit)),
      devcomp = as.list(cmp[!is.na(cmp)]),
      vcov = vc,
      varcorr = .varcorr_list(fit),
      optinfo = list(
        optimizer = as.character(fit@optinfo$optimizer),
        feval = .S(as.integer(fit@optinfo$feval)),
        conv_code = .S(as.integer(fit@optinfo$conv$opt)),
        lme4_messages = as.character(unlist(fit@optinfo$conv$lme4$messages)),
        optimizer_warnings = as.character(unlist(fit@optinfo$warnings))
      ),
      singular = .S(isSingular(fit)),
      dropped_columns = if (is.null(dropped)) character(0) else as.character(names(dropped))
    )
  })
  out <- ext$value
  out$devcomp <- lapply(out$devcomp, .S)
  out$control <- .S(kind)
  out$warnings <- as.character(captured$warnings)
  out$messages <- as.character(captured$messages)
  out$extraction_warnings <- as.character(c(ext$warnings, ext$messages))
  out
}

## Control settings for the two fits the fixtures keep.
parity_control <- function(kind, method = "glmer") {
  if (method == "lmer") {
    return(switch(kind,
      default = lmerControl(),
      ## lme4's true optimum: bobyqa with a trust region shrunk far below the default.
      tight = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 100000L)),
      stop("unknown control kind: ", kind)
    ))
  }
  switch(kind,
    default = glmerControl(),
    ## lme4's true optimum: PIRLS converged far below the default 1e-7, bobyqa for both
    ## stages, and a trust region shrunk far below the default rhoend.
    tight = glmerControl(optimizer = c("bobyqa", "bobyqa"), tolPwrss = 1e-13,
                         optCtrl = list(rhoend = 1e-10, maxfun = 100000L)),
    stop("unknown control kind: ", kind)
  )
}

parity_fit <- function(data, spec, setting, kind) {
  parity_in_c_locale({
    method <- parity_method(spec)
    fam <- parity_family(spec$family, spec$link)
    cl <- parity_call(method, spec, setting, parity_control(kind, method))
    captured <- parity_capture(eval(cl))
    out <- parity_summarize_fit(captured$value, captured, kind)
    if (kind == "tight") out$results <- parity_results(captured$value, data, spec)
    out
  })
}

## The new data the predictions are made on, chosen from the case's data: `rows`, the first
## five rows complete in the model's variables, and `new_level_rows`, the first two of them
## again with `column` set to the level `level`, which the fit has not seen.  `column` is the
## first grouping variable of the bars that the fixed part does not use (renaming a level of
## a fixed-effect factor is an error, not a new level); none: no new-level rows.  Indices are
## 0-based, as the Python side rebuilds the same frame from them.
parity_newdata_rule <- function(data, spec) {
  f <- parity_formula(spec$formula, spec$functions)
  vars <- intersect(c(all.vars(f), spec$weights, spec$offset), names(data))
  rows <- head(which(stats::complete.cases(data[vars])), 5L)
  fixed <- all.vars(lme4::nobars(f))
  grouping <- unique(unlist(lapply(lme4::findbars(f), function(b) all.vars(b[[3L]]))))
  column <- setdiff(grouping, fixed)
  column <- column[vapply(column, function(v) is.factor(data[[v]]), TRUE)]
  if (!length(column)) {
    return(list(rows = as.integer(rows - 1L), new_level_rows = integer(0), column = NULL,
                level = NULL))
  }
  list(rows = as.integer(rows - 1L), new_level_rows = as.integer(head(rows, 2L) - 1L),
       column = .S(column[[1L]]), level = .S("parity.new"))
}

parity_newdata <- function(data, rule) {
  nd <- data[rule$rows + 1L, , drop = FALSE]
  if (!length(rule$new_level_rows)) return(list(known = nd, all = nd))
  extra <- data[rule$new_level_rows + 1L, , drop = FALSE]
  v <- rule$column
  extra[[v]] <- factor(rep(rule$level, nrow(extra)), levels = c(levels(data[[v]]), rule$level))
  list(known = nd, all = rbind(nd, extra))
}

## The fit with its PIRLS continued from its own mode to tolPwrss = 1e-14 at the same
## parameters (lme4's glmerLaplace: u and beta jointly for nAGQ = 0, u alone with X beta in
## the offset otherwise), on copies of its pp and resp: at the tight fit's 1e-13, Fisher
## scoring for a non-canonical link stops with mu still ~1e-7 from the mode.  theta, beta
## (for nAGQ = 0 the converged profiled beta) and the stored Hessian are the fit's.  Where
## PIRLS fails, the fit itself.
parity_converged <- function(fit) {
  nAGQ <- fit@devcomp$dims[["nAGQ"]]
  f2 <- fit
  f2@pp <- fit@pp$copy()
  f2@resp <- fit@resp$copy()
  if (nAGQ > 0) f2@resp$setOffset(f2@resp$offset + as.numeric(getME(fit, "X") %*% fixef(fit)))
  ok <- tryCatch({
    lme4:::glmerLaplaceHandle(f2@pp$ptr(), f2@resp$ptr(), if (nAGQ == 0) 0L else 1L, 1e-14,
                              500L, 0L)
    TRUE
  }, error = function(e) FALSE)
  if (!ok) return(fit)
  if (nAGQ == 0) f2@beta <- f2@pp$beta(1)  # beta is profiled: the converged one
  f2
}

## lme4's answers of a glmerMod or lmerMod beyond its estimates, at the fit: vcov by lme4's
## default (the Hessian's for a glmer fit at nAGQ >= 1; R_X's for an lmer fit) and from R_X
## (use.hessian = FALSE), coef(summary()) (an lmer fit's without p-values),
## as.data.frame(VarCorr()), fitted(), the four residual types, predictions on the new data
## of parity_newdata_rule (all terms on the known rows; all terms with allow.new.levels on
## every row, link and response; re.form = NA on every row), the Wald intervals of the fixed
## effects, the lines of print(summary()) (without the Control: line, which names an R
## expression), and condVar as the fit's ranef has it; a glmer fit's after parity_converged
## (an lmer fit has no PIRLS: its mode is exact at its theta).
parity_results <- function(fit, data, spec) {
  res <- parity_capture({
    if (is(fit, "glmerMod")) fit <- parity_converged(fit)
    rule <- parity_newdata_rule(data, spec)
    nd <- parity_newdata(data, rule)
    ct <- coef(summary(fit))
    vdf <- as.data.frame(VarCorr(fit))
    ci <- confint(fit, parm = "beta_", method = "Wald")
    sfit <- fit
    sfit@call$control <- NULL  # its Control: line would deparse the whole glmerControl
    pr_new <- if (length(rule$new_level_rows)) {
      list(link = unname(as.numeric(predict(fit, newdata = nd$all, allow.new.levels = TRUE))),
           response = unname(as.numeric(predict(fit, newdata = nd$all, allow.new.levels = TRUE,
                                                 type = "response"))))
    }
    ## fitted values and residuals of every row, or of 2000 evenly spaced rows of a large
    ## fit (InstEval: 73,421), whose 0-based indices are kept
    n <- length(fitted(fit))
    obs <- if (n > 5000L) unique(as.integer(round(seq(1, n, length.out = 2000L)))) else seq_len(n)
    at_obs <- function(x) unname(as.numeric(x))[obs]
    list(
      newdata = rule,
      observed_rows = if (n > 5000L) as.integer(obs - 1L),
      vcov_default = .matrix_named(vcov(fit)),
      vcov_rx = .matrix_named(suppressWarnings(vcov(fit, use.hessian = FALSE))),
      coef_table = list(rows = as.character(rownames(ct)), columns = as.character(colnames(ct)),
                        values = unname(as.matrix(ct))),
      varcorr = list(grp = as.character(vdf$grp), var1 = as.character(vdf$var1),
                     var2 = as.character(vdf$var2), vcov = as.numeric(vdf$vcov),
                     sdcor = as.numeric(vdf$sdcor)),
      fitted = at_obs(fitted(fit)),
      residuals = lapply(c(deviance = "deviance", pearson = "pearson", working = "working",
                           response = "response"),
                         function(t) at_obs(residuals(fit, type = t))),
      predict = list(
        known = unname(as.numeric(predict(fit, newdata = nd$known))),
        new_levels = pr_new,
        fixed_only = unname(as.numeric(predict(fit, newdata = nd$all, re.form = NA)))),
      confint = list(rows = as.character(rownames(ci)), columns = as.character(colnames(ci)),
                     values = unname(as.matrix(ci))),
      summary = as.character(utils::capture.output(print(summary(sfit)))),
      condvar = lapply(.ranef_list(fit), function(t) t$condVar)
    )
  })
  out <- res$value
  out$warnings <- as.character(c(res$warnings, res$messages))
  out
}

## lme4's devfun for nAGQ, built with a given tolPwrss.  nAGQ = 0 takes theta (beta profiled
## by joint PIRLS); nAGQ >= 1 takes c(theta, beta).  A fresh devfun is built for every call
## because updateGlmerDevfun() alters its environment in place.
parity_devfun <- function(data, spec, nAGQ, tol) {
  fam <- parity_family(spec$family, spec$link)
  gl <- eval(parity_call("glFormula", spec, nAGQ, NULL))
  d0 <- do.call(mkGlmerDevfun, c(gl, list(control = glmerControl(tolPwrss = tol))))
  if (nAGQ == 0) d0 else updateGlmerDevfun(d0, gl$reTrms, nAGQ = nAGQ)
}

## lmer's devfun (the REML criterion, or the ML deviance) at each theta.  It has no PIRLS and
## no lagged factor: one evaluation is exact, so `objective_lagged` is the same value.
parity_probe_lmer <- function(data, spec, reml, points) {
  lf <- eval(parity_call("lFormula", spec, reml, NULL))
  d <- do.call(mkLmerDevfun, lf)
  env <- environment(d)
  res <- lapply(points, function(p) {
    val <- d(as.numeric(p))
    list(
      params = as.numeric(p),
      objective = .S(as.numeric(val)),
      objective_lagged = .S(as.numeric(val)),
      u = as.numeric(env$pp$u(1)),
      b = as.numeric(env$pp$b(1)),
      beta = as.numeric(env$pp$beta(1)),
      ldL2 = .S(as.numeric(env$pp$ldL2())),
      ussq = .S(as.numeric(env$pp$sqrL(1))),
      drsum = .S(as.numeric(env$resp$wrss()))
    )
  })
  list(tolPwrss = .S(1e-14), points = res, failed = character(0))
}

## Evaluate the converged devfun at each parameter vector.  Tries tolPwrss from `tols` in
## order, and keeps the first at which every point converges.  (lmer: parity_probe_lmer,
## whose objective has no PIRLS; its tolPwrss is recorded as the smallest, 1e-14.)
parity_probe <- function(data, spec, nAGQ, points, tols) {
  if (parity_method(spec) == "lmer") {
    return(parity_in_c_locale(suppressWarnings(suppressMessages(
      parity_probe_lmer(data, spec, nAGQ, points)))))
  }
  parity_in_c_locale({
    errors <- character(0)
    for (tol in tols) {
      res <- tryCatch({
        d <- suppressWarnings(suppressMessages(parity_devfun(data, spec, nAGQ, tol)))
        env <- environment(d)
        lp0 <- env$lp0
        lapply(points, function(p) {
          env$lp0 <- lp0
          ## The first evaluation starts PIRLS from lme4's stored lp0; its log|L|^2 comes
          ## from the weights one iteration before the end.  Restarting from the mode it
          ## found (lp0 := eta - offset) makes that lagged L the L at the mode itself.
          lagged <- d(as.numeric(p))
          env$lp0 <- env$resp$eta - (if (nAGQ == 0) env$resp$offset else env$baseOffset)
          val <- d(as.numeric(p))
          list(
            params = as.numeric(p),
            objective = .S(as.numeric(val)),
            objective_lagged = .S(as.numeric(lagged)),
            u = as.numeric(env$pp$u(1)),
            b = as.numeric(env$pp$b(1)),
            beta = as.numeric(if (nAGQ == 0) env$pp$beta(1) else
              p[-seq_along(env$pp$theta)]),
            ldL2 = .S(as.numeric(env$pp$ldL2())),
            ussq = .S(as.numeric(env$pp$sqrL(1))),
            drsum = .S(as.numeric(env$resp$resDev())),
            aic = .S(as.numeric(env$resp$aic()))
          )
        })
      }, error = function(e) {
        errors <<- c(errors, sprintf("tolPwrss=%g: %s", tol, conditionMessage(e)))
        NULL
      })
      if (!is.null(res)) {
        return(list(tolPwrss = .S(tol), points = res, failed = errors))
      }
    }
    stop("lme4 devfun failed at every tolPwrss tried: ", paste(errors, collapse = "; "))
  })
}

## Evaluate a data expression (for example "lme4::cbpp") in the C locale.
parity_make_data <- function(expr) {
  parity_in_c_locale({
    env <- new.env(parent = globalenv())
    df <- eval(parse(text = expr), envir = env)
    if (!is.data.frame(df)) stop("the data expression did not give a data.frame")
    as.data.frame(df)
  })
}

## Helpers for building a data.frame from the Python side.
parity_factor <- function(codes, levels, ordered) {
  factor(levels[codes], levels = levels, ordered = isTRUE(ordered))
}

parity_data_frame <- function(cols) {
  df <- as.data.frame(cols, stringsAsFactors = FALSE, optional = TRUE)
  names(df) <- names(cols)
  df
}

## Run each bridge function once on a small model, in the session itself.  Timed calls run
## in forked children (parity/deadline.py), which lose what R loads lazily and byte-compiles
## on first use; done once here, every child inherits it.
parity_warm_up <- function() {
  data <- data.frame(y = rep(c(0, 1, 1, 0, 1), 4), x = rep(1:5, 4),
                     g = factor(rep(1:4, each = 5)))
  spec <- list(formula = "y ~ x + (1 | g)", family = "binomial", link = "logit",
               functions = c("~", "+", "|", "("))
  for (kind in c("default", "tight")) parity_fit(data, spec, 1L, kind)
  parity_probe(data, spec, 1L, list(c(0.5, 0, 0)), 1e-10)
  invisible(NULL)
}
