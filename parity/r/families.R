## R side of the family fixture (scripts/generate_family_fixtures.py): evaluate R's family
## objects and lme4's C++ glmFamily (lme4::glmFamily, the reference class lme4 keeps for
## testing its family code) on the same inputs, and return plain lists.
##
## Sourced after glmer_case.R, whose .S() tags scalars for the Python converter.

## The family object; link NULL means the family's default (canonical) link.  do.call passes
## the link as a value, because the family constructors substitute() their argument.
parity_fam_make <- function(family, link) {
  fam <- get(family, envir = asNamespace("stats"), mode = "function")
  if (is.null(link)) fam() else do.call(fam, list(link = link))
}

## mu as a function of eta for each link, written out so that stats::D can differentiate it.
## parity_fam_link() checks each one against the family's own linkinv on the moderate grid.
parity_fam_mu_of_eta <- list(
  logit = quote(1 / (1 + exp(-eta))),
  probit = quote(pnorm(eta)),
  cloglog = quote(1 - exp(-exp(eta))),
  cauchit = quote(0.5 + atan(eta) / pi),
  log = quote(exp(eta)),
  identity = quote(eta),
  inverse = quote(1 / eta),
  sqrt = quote(eta^2),
  "1/mu^2" = quote(1 / sqrt(eta))
)

parity_fam_variance_of_mu <- list(
  binomial = quote(mu * (1 - mu)),
  poisson = quote(mu),
  Gamma = quote(mu^2),
  inverse.gaussian = quote(mu^3)
)

## Evaluate a symbolic derivative on x; constant derivatives are recycled to length(x).
parity_fam_eval_d <- function(expr, var, x, order) {
  for (i in seq_len(order)) expr <- stats::D(expr, var)
  rep_len(as.numeric(eval(expr, stats::setNames(list(x), var))), length(x))
}

## Link functions on a moderate grid (eta, mu) and on extreme eta, from R and from lme4.
parity_fam_link <- function(family, link, eta, mu, eta_extreme) {
  fam <- parity_fam_make(family, link)
  cpp <- lme4::glmFamily$new(family = fam)
  expr <- parity_fam_mu_of_eta[[link]]
  check <- parity_fam_eval_d(expr, "eta", eta, 0)
  if (!isTRUE(all.equal(check, fam$linkinv(eta), tolerance = 1e-12)))
    stop("the symbolic mu(eta) for link ", link, " disagrees with its linkinv")
  ans <- list(
    r = list(linkfun = fam$linkfun(mu), linkinv = fam$linkinv(eta), mu_eta = fam$mu.eta(eta)),
    lme4 = list(linkfun = cpp$link(mu), linkinv = cpp$linkInv(eta), mu_eta = cpp$muEta(eta)),
    mu_eta_D = parity_fam_eval_d(expr, "eta", eta, 1),
    mu_eta2_D = parity_fam_eval_d(expr, "eta", eta, 2)
  )
  if (length(eta_extreme)) {
    ans$extreme <- list(
      r = list(linkinv = fam$linkinv(eta_extreme), mu_eta = fam$mu.eta(eta_extreme)),
      lme4 = list(linkinv = cpp$linkInv(eta_extreme), mu_eta = cpp$muEta(eta_extreme))
    )
  }
  ans
}

## Variance function and its symbolic derivative.
parity_fam_variance <- function(family, mu) {
  fam <- parity_fam_make(family, NULL)
  cpp <- lme4::glmFamily$new(family = fam)
  list(r = fam$variance(mu), lme4 = cpp$variance(mu),
       variance_deriv_D = parity_fam_eval_d(parity_fam_variance_of_mu[[family]], "mu", mu, 1))
}

## Unit deviances, their sum and the aic, from R's family and from lme4's C++.  An infinite
## aic (dpois of a non-integer y) is returned as NULL with aic_is_inf = TRUE.
parity_fam_deviance <- function(family, y, n, mu, wt) {
  fam <- parity_fam_make(family, NULL)
  cpp <- lme4::glmFamily$new(family = fam)
  out <- function(dev_resids, aic) {
    list(dev_resids = dev_resids, dev = .S(sum(dev_resids)),
         aic = if (is.finite(aic)) .S(aic) else NULL,
         aic_is_inf = .S(is.infinite(aic) && aic > 0))
  }
  r_dev <- fam$dev.resids(y, mu, wt)
  c_dev <- cpp$devResid(y, mu, wt)
  list(r = out(r_dev, suppressWarnings(fam$aic(y, n, mu, wt, sum(r_dev)))),
       lme4 = out(c_dev, suppressWarnings(cpp$aic(y, n, mu, wt, sum(c_dev)))))
}

## family$initialize on a response given as kind + vectors (codes are 0-based for factors).
## Returns y, weights, n, mustart and the warnings, or the error message.
parity_fam_initialize <- function(family, kind, a, b, levels, weights) {
  fam <- parity_fam_make(family, NULL)
  y <- switch(kind,
    numeric = a,
    logical = as.logical(a),
    factor = factor(levels[a + 1], levels = levels),
    cbind = cbind(a, b),
    matrix3 = cbind(a, b, a),
    stop("unknown response kind: ", kind)
  )
  rho <- new.env()
  rho$y <- y
  rho$weights <- weights
  rho$nobs <- NROW(y)
  warns <- character(0)
  err <- tryCatch({
    withCallingHandlers(
      eval(fam$initialize, rho),
      warning = function(w) {
        warns <<- c(warns, conditionMessage(w))
        invokeRestart("muffleWarning")
      }
    )
    NULL
  }, error = function(e) conditionMessage(e))
  if (!is.null(err)) return(list(error = .S(err)))
  list(y = as.numeric(rho$y), weights = as.numeric(rho$weights), n = as.numeric(rho$n),
       mustart = as.numeric(rho$mustart), warnings = warns)
}
