# Reference numbers for the LMM tests (tests/test_lmer.py): lme4 1.1-31, R 4.2.2, C locale.
#   LC_ALL=C Rscript tests/data/lmm/lme4_reference.R   (writes lme4_reference.json beside it)
# Fits: lme4's default control and a tight one; probes: lme4's devfun at fixed θ.
suppressMessages(library(lme4))
num <- function(x) if (is.na(x)) "null" else if (is.infinite(x)) (if (x > 0) "1e999" else "-1e999") else sprintf("%.17g", x)
js <- function(x) {
  if (is.null(x)) return("null")
  if (is.list(x)) {
    nm <- names(x)
    inner <- vapply(seq_along(x), function(i) js(x[[i]]), "")
    if (is.null(nm)) return(paste0("[", paste(inner, collapse = ","), "]"))
    return(paste0("{", paste(sprintf("\"%s\":%s", nm, inner), collapse = ","), "}"))
  }
  if (is.character(x)) x <- gsub("\n", "\\\\n", gsub("\"", "\\\\\"", x))
  if (is.character(x)) return(if (length(x) == 1) sprintf("\"%s\"", x) else paste0("[", paste(sprintf("\"%s\"", x), collapse = ","), "]"))
  if (is.logical(x) && length(x) == 1) return(if (is.na(x)) "null" else if (x) "true" else "false")
  v <- vapply(as.numeric(x), num, "")
  if (length(x) == 1 && is.null(dim(x))) v else paste0("[", paste(v, collapse = ","), "]")
}
tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_rel = 1e-14, ftol_abs = 1e-15, xtol_abs = 1e-14, maxeval = 100000))
ss <- sleepstudy
ss$w <- 1 + (ss$Days %% 3) / 2
ss$o <- 0.25 * ss$Days^2
cases <- list(
  sleepstudy = list(f = Reaction ~ Days + (Days | Subject), data = ss),
  Dyestuff = list(f = Yield ~ 1 + (1 | Batch), data = Dyestuff),
  Dyestuff2 = list(f = Yield ~ 1 + (1 | Batch), data = Dyestuff2),
  Penicillin = list(f = diameter ~ 1 + (1 | plate) + (1 | sample), data = Penicillin),
  Pastes = list(f = strength ~ 1 + (1 | batch/cask), data = Pastes),
  `sleepstudy-weights` = list(f = Reaction ~ Days + (Days | Subject), data = ss, w = TRUE),
  InstEval = list(f = y ~ service + (1 | s) + (1 | d) + (1 | dept), data = InstEval)
)
only <- commandArgs(trailingOnly = TRUE)
if (length(only)) cases <- cases[only]
fitone <- function(cs, REML, control) {
  d <- cs$data
  if (isTRUE(cs$w)) lmer(cs$f, d, REML = REML, control = control, weights = w, offset = o)
  else lmer(cs$f, d, REML = REML, control = control)
}
devf <- function(cs, REML) {
  d <- cs$data
  if (isTRUE(cs$w)) lmer(cs$f, d, REML = REML, weights = w, offset = o, devFunOnly = TRUE)
  else lmer(cs$f, d, REML = REML, devFunOnly = TRUE)
}
summ <- function(fit, secs) {
  re <- ranef(fit, condVar = FALSE)
  list(criterion = unname(if (isREML(fit)) fit@devcomp$cmp[["REML"]] else fit@devcomp$cmp[["dev"]]),
       theta = unname(getME(fit, "theta")), fixef = unname(fixef(fit)), sigma = sigma(fit),
       remlcrit = REMLcrit(fit), deviance_ml = deviance(fit, REML = FALSE),
       loglik = as.numeric(logLik(fit)), aic = AIC(fit), bic = BIC(fit),
       feval = fit@optinfo$feval, seconds = secs,
       vcov = as.numeric(as.matrix(vcov(fit))),
       ranef = lapply(re, function(r) list(levels = rownames(r), values = as.numeric(as.matrix(r)))),
       singular = isSingular(fit))
}
out <- list()
for (nm in names(cases)) {
  cs <- cases[[nm]]
  res <- list()
  for (REML in c(TRUE, FALSE)) {
    t0 <- proc.time()[["elapsed"]]
    fd <- suppressMessages(fitone(cs, REML, lmerControl()))
    t1 <- proc.time()[["elapsed"]]
    ft <- suppressMessages(fitone(cs, REML, tight))
    dfun <- devf(cs, REML)
    th <- getME(ft, "theta")
    probes <- list(unname(th), unname(th * 1.1 + 0.01), unname(pmax(th * 0.5, 0.05)))
    pv <- lapply(probes, function(p) dfun(p))
    res[[if (REML) "REML" else "ML"]] <- list(default = summ(fd, t1 - t0), tight = summ(ft, NA),
                                             probes = list(theta = probes, value = pv))
  }
  out[[nm]] <- res
  cat(nm, "done\n")
}
# refitML, anova of two REML fits, glmer(family = gaussian)
fm <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
fm1 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy)
rf <- refitML(fm)
msg <- character(0)
an <- withCallingHandlers(anova(fm1, fm), message = function(m) { msg <<- c(msg, conditionMessage(m)); invokeRestart("muffleMessage") })
extra <- list(
  refitML = list(theta = unname(getME(rf, "theta")), deviance = deviance(rf), fixef = unname(fixef(rf)), sigma = sigma(rf)),
  anova = list(message = msg, npar = an$npar, AIC = an$AIC, BIC = an$BIC, logLik = an$logLik,
               deviance = an$deviance, Chisq = an$Chisq, Df = an$Df, p = an[["Pr(>Chisq)"]]))
wmsg <- character(0)
gg <- withCallingHandlers(glmer(Reaction ~ Days + (Days | Subject), sleepstudy, family = gaussian),
                          warning = function(w) { wmsg <<- c(wmsg, conditionMessage(w)); invokeRestart("muffleWarning") })
extra$glmer_gaussian <- list(warning = wmsg, class = class(gg)[1], remlcrit = REMLcrit(gg), theta = unname(getME(gg, "theta")))
gtight <- glmerControl(optimizer = c("bobyqa", "bobyqa"), tolPwrss = 1e-13, optCtrl = list(rhoend = 1e-10, maxfun = 100000L))
gl <- suppressMessages(suppressWarnings(glmer(Reaction ~ Days + (1 | Subject), sleepstudy, family = gaussian(link = "log"), control = gtight)))
extra$glmer_gaussian_log <- list(dev = unname(gl@devcomp$cmp[["dev"]]), theta = unname(getME(gl, "theta")), fixef = unname(fixef(gl)),
                                 sigma = sigma(gl), aic = AIC(gl), df = attr(logLik(gl), "df"))
out$extra <- extra
writeLines(js(out), "tests/data/lmm/lme4_reference.json")
