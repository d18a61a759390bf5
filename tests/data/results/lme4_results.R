## lme4 1.1-31 (R 4.2.2, C locale): the references of tests/test_results_*.py, at lme4s tight
## optimum (the harness tight control).  Run: Rscript lme4_results.R (writes lme4_results.json).
Sys.setlocale("LC_ALL", "C")
suppressMessages({library(lme4); library(jsonlite); library(mlmRev)})
tight <- glmerControl(optimizer = c("bobyqa", "bobyqa"), tolPwrss = 1e-13,
                      optCtrl = list(rhoend = 1e-10, maxfun = 100000L))
cbpp2 <- transform(cbpp, prop = incidence / size)
cases <- list(
  cbpp = list(f = cbind(incidence, size - incidence) ~ period + (1 | herd), d = cbpp2, fam = binomial(),
              nd = rbind(cbpp2[c(1, 5, 9, 20), ], transform(cbpp2[c(2, 3), ], herd = factor(c("16", "1"), levels = c(levels(cbpp2$herd), "16")))),
              nagq = c(0L, 1L, 25L)),
  gamma = list(f = Reaction ~ Days + (Days | Subject), d = sleepstudy, fam = Gamma(link = "log"),
               nd = data.frame(Days = c(0, 3.5, 9, 2), Subject = factor(c("308", "309", "372", "999"))),
               nagq = 1L),
  contra = list(f = use ~ age + urban + livch + (age || district), d = Contraception, fam = binomial(),
               nd = transform(Contraception[c(1, 100, 500, 1000), ], district = factor(c("1", "2", "99", "3"), levels = c(levels(Contraception$district), "99"))),
               nagq = 1L)
)
out <- list()
for (nm in names(cases)) {
  cs <- cases[[nm]]
  for (k in cs$nagq) {
    fit <- glmer(cs$f, cs$d, cs$fam, nAGQ = k, control = tight)
    vc <- as.matrix(vcov(fit))
    vrx <- suppressWarnings(as.matrix(vcov(fit, use.hessian = FALSE)))
    cs_tab <- coef(summary(fit))
    vcdf <- as.data.frame(VarCorr(fit))
    re <- ranef(fit, condVar = TRUE)
    cv <- lapply(re, function(r) { a <- attr(r, "postVar"); if (is.list(a)) lapply(a, function(x) as.numeric(x)) else as.numeric(a) })
    nd <- cs$nd
    pr <- list(
      link_all = unname(predict(fit, newdata = nd, allow.new.levels = TRUE)),
      resp_all = unname(predict(fit, newdata = nd, allow.new.levels = TRUE, type = "response")),
      link_none = unname(predict(fit, newdata = nd, re.form = NA)),
      fit_link = unname(predict(fit)), fit_resp = unname(predict(fit, type = "response")))
    if (nm == "contra") pr$link_some <- unname(predict(fit, newdata = nd, re.form = ~ (1 | district), allow.new.levels = TRUE))
    err <- tryCatch({predict(fit, newdata = nd); "none"}, error = function(e) conditionMessage(e))
    out[[paste0(nm, "_", k)]] <- list(
      params = c(getME(fit, "theta"), fixef(fit)), theta = unname(getME(fit, "theta")), beta = unname(fixef(fit)),
      vcov = unname(vc), vcov_rx = unname(vrx), coef = unname(cs_tab), coef_cols = colnames(cs_tab),
      varcorr = vcdf, condvar = cv,
      fitted = unname(fitted(fit)),
      res_deviance = unname(residuals(fit, "deviance")), res_pearson = unname(residuals(fit, "pearson")),
      res_working = unname(residuals(fit, "working")), res_response = unname(residuals(fit, "response")),
      pred = pr, newlevel_error = err,
      confint = unname(confint(fit, method = "Wald")[names(fixef(fit)), , drop = FALSE]),
      summary = capture.output(print(summary(fit))), sigma = sigma(fit))
  }
}
g0 <- glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), cbpp2, binomial)
g1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp2, binomial)
a <- anova(g0, g1)
out$anova <- list(table = as.data.frame(a), rows = rownames(a),
                  theta0 = unname(getME(g0, "theta")), theta1 = unname(getME(g1, "theta")))
out$summary_default <- capture.output(print(summary(g1)))
write_json(out, "lme4_results.json", digits = NA, auto_unbox = TRUE, na = "null")
