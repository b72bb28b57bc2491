// phoneauth's built-in pages: register, login, account. No dependencies; talks
// to the canonical API (/api/v1.0) with the csrf_token cookie as X-CSRFToken.
(() => {
  "use strict";

  // Every text of the pages: [key, Chinese, English].
  const ROWS = [
    ["lang.switch", "English", "中文"],
    ["register.title", "注册 · phoneauth", "Sign up · phoneauth"],
    ["register.heading", "注册", "Sign up"],
    ["register.submit", "注册", "Sign up"],
    ["register.have", "已有账号？", "Have an account?"],
    ["register.login", "登录", "Log in"],
    ["login.title", "登录 · phoneauth", "Log in · phoneauth"],
    ["login.heading", "登录", "Log in"],
    ["login.submit", "登录", "Log in"],
    ["login.new", "还没有账号？", "New here?"],
    ["login.register", "注册", "Sign up"],
    ["account.title", "我的账号 · phoneauth", "My account · phoneauth"],
    ["account.heading", "我的账号", "My account"],
    ["account.mobile", "手机号", "Mobile"],
    ["account.since", "注册时间", "Member since"],
    ["account.logout", "退出登录", "Log out"],
    ["field.mobile", "手机号", "Mobile number"],
    ["field.captcha", "图片验证码", "Picture code"],
    ["field.sms", "短信验证码", "SMS code"],
    ["field.password", "密码（至少8位）", "Password (8 characters or more)"],
    ["field.password2", "确认密码", "Repeat password"],
    ["field.password.login", "密码", "Password"],
    ["captcha.alt", "图片验证码，看不清可点击换一张", "Picture code; click for a new one"],
    ["captcha.refresh", "换一张图片验证码", "New picture code"],
    ["sms.send", "获取验证码", "Send code"],
    ["sms.wait", "{n}秒后重发", "Resend in {n}s"],
    ["sms.sent", "验证码已发送，请查收短信", "Code sent; check your messages"],
    ["err.mobile", "请输入手机号", "Enter your mobile number"],
    ["err.captcha", "请输入图片验证码", "Enter the picture code"],
    ["err.fill", "请填写所有字段", "Fill in every field"],
    ["err.mismatch", "两次密码不一致", "The passwords do not match"],
    ["err.network", "网络错误，请稍后再试", "Network error, please try again"],
  ];
  const TEXT = { "zh-CN": {}, en: {} };
  for (const [key, zh, en] of ROWS) {
    TEXT["zh-CN"][key] = zh;
    TEXT.en[key] = en;
  }

  const stored = localStorage.getItem("phoneauth.lang");
  let lang = stored || (document.documentElement.lang === "en" ? "en" : "zh-CN");
  const t = (key) => (TEXT[lang] && TEXT[lang][key]) || TEXT["zh-CN"][key] || key;
  const $ = (id) => document.getElementById(id);

  function applyLang() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.querySelectorAll("[data-i18n-alt]").forEach((el) => { el.alt = t(el.dataset.i18nAlt); });
    document.querySelectorAll("[data-i18n-aria]").forEach((el) => {
      el.setAttribute("aria-label", t(el.dataset.i18nAria));
    });
  }

  function cookie(name) {
    const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    if (!hit) return "";
    try { return decodeURIComponent(hit.slice(name.length + 1)); } catch (_) { return ""; }
  }

  async function api(method, url, body) {
    const headers = { "Accept-Language": lang === "en" ? "en" : "zh-CN" };
    if (method !== "GET") {
      const token = cookie("csrf_token");
      if (token) headers["X-CSRFToken"] = token;
      headers["Content-Type"] = "application/json";
    }
    const resp = await fetch(url, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)
    });
    let data = {};
    try { data = await resp.json(); } catch (_) { /* not JSON */ }
    return { status: resp.status, retryAfter: parseInt(resp.headers.get("Retry-After") || "0", 10), data };
  }

  function showError(msg) {
    $("form-error").textContent = msg || "";
    const status = $("form-status");
    if (msg && status) status.textContent = "";
  }

  function randomId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function register() {
    let captchaId = "";
    let timer = null;
    const img = $("captcha-img");
    const sendBtn = $("send-code");

    function newCaptcha() {
      captchaId = randomId();
      img.src = "/api/v1.0/image_codes/" + captchaId;
      img.dataset.captchaId = captchaId;
      $("image_code").value = "";
    }

    function countdown(seconds) {
      clearInterval(timer);
      let left = Math.max(1, seconds);
      sendBtn.disabled = true;
      const tick = () => {
        if (left <= 0) {
          clearInterval(timer);
          sendBtn.disabled = false;
          sendBtn.textContent = t("sms.send");
          return;
        }
        sendBtn.textContent = t("sms.wait").replace("{n}", left);
        left -= 1;
      };
      tick();
      timer = setInterval(tick, 1000);
    }

    img.addEventListener("click", newCaptcha);
    $("captcha-refresh").addEventListener("click", newCaptcha);

    sendBtn.addEventListener("click", async () => {
      const mobile = $("mobile").value.trim();
      const answer = $("image_code").value.trim();
      if (!mobile) { showError(t("err.mobile")); $("mobile").focus(); return; }
      if (!answer) { showError(t("err.captcha")); $("image_code").focus(); return; }
      showError("");
      try {
        const r = await api("GET", "/api/v1.0/sms_codes/" + encodeURIComponent(mobile) +
          "?image_code=" + encodeURIComponent(answer) + "&image_code_id=" + captchaId);
        if (r.data.errno === "0") {
          $("form-status").textContent = t("sms.sent");
          countdown(60);
          $("sms_code").focus();
        } else {
          showError(r.data.errmsg);
          if (r.data.errno === "4201" && r.retryAfter > 0 && r.retryAfter <= 3600) countdown(r.retryAfter);
        }
      } catch (_) {
        showError(t("err.network"));
      }
      // The captcha was used up by the check, whatever its outcome.
      newCaptcha();
    });

    $("register-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = {
        mobile: $("mobile").value.trim(), sms_code: $("sms_code").value.trim(),
        password: $("password").value, password2: $("password2").value
      };
      if (!body.mobile || !body.sms_code || !body.password) { showError(t("err.fill")); return; }
      if (body.password !== body.password2) { showError(t("err.mismatch")); $("password2").focus(); return; }
      try {
        const r = await api("POST", "/api/v1.0/users", body);
        if (r.data.errno === "0") { location.assign("/account"); return; }
        showError(r.data.errmsg);
      } catch (_) {
        showError(t("err.network"));
      }
    });

    newCaptcha();
  }

  function login() {
    $("login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = { mobile: $("mobile").value.trim(), password: $("password").value };
      if (!body.mobile || !body.password) { showError(t("err.fill")); return; }
      try {
        const r = await api("POST", "/api/v1.0/sessions", body);
        if (r.data.errno === "0") { location.assign("/account"); return; }
        showError(r.data.errmsg);
      } catch (_) {
        showError(t("err.network"));
      }
    });
  }

  async function account() {
    const r = await api("GET", "/api/v1.0/user");
    if (r.data.errno !== "0") { location.assign("/signin"); return; }
    const m = r.data.data.mobile || "";
    $("account-mobile").textContent = m.length > 7 ? m.slice(0, 3) + "****" + m.slice(-4) : m;
    const since = new Date(r.data.data.create_time);
    $("account-since").textContent = isNaN(since) ? "" : since.toLocaleDateString(lang);
    $("logout").addEventListener("click", async () => {
      await api("DELETE", "/api/v1.0/session");
      location.assign("/signin");
    });
  }

  $("lang-switch").addEventListener("click", () => {
    lang = lang === "en" ? "zh-CN" : "en";
    localStorage.setItem("phoneauth.lang", lang);
    applyLang();
  });
  applyLang();
  ({ register, login, account })[document.body.dataset.page]();
})();
