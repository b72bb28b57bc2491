// phoneauth's built-in pages: register, sign in (password or code), forgot
// password, account. No dependencies; talks to the canonical API (/api/v1.0)
// with the csrf_token cookie as X-CSRFToken.
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
    ["login.by_code", "短信验证码登录", "Sign in with a code"],
    ["login.by_password", "密码登录", "Sign in with a password"],
    ["login.forgot", "忘记密码？", "Forgot password?"],
    ["forgot.title", "找回密码 · phoneauth", "Reset password · phoneauth"],
    ["forgot.heading", "找回密码", "Reset password"],
    ["forgot.submit", "重置密码并登录", "Reset password and log in"],
    ["forgot.remember", "想起密码了？", "Remembered it?"],
    ["forgot.login", "登录", "Log in"],
    ["account.title", "我的账号 · phoneauth", "My account · phoneauth"],
    ["account.heading", "我的账号", "My account"],
    ["account.mobile", "手机号", "Mobile"],
    ["account.name", "用户名", "Name"],
    ["account.since", "注册时间", "Member since"],
    ["account.avatar", "我的头像", "My avatar"],
    ["account.logout", "退出登录", "Log out"],
    ["name.heading", "修改用户名", "Change name"],
    ["name.save", "保存", "Save"],
    ["name.saved", "用户名已保存", "Name saved"],
    ["name.taken", "用户名已存在", "That name is taken"],
    ["avatar.heading", "更换头像", "Change avatar"],
    ["avatar.upload", "上传头像", "Upload avatar"],
    ["avatar.saved", "头像已更新", "Avatar updated"],
    ["password.heading", "修改密码", "Change password"],
    ["password.submit", "修改密码", "Change password"],
    ["password.saved", "密码已修改，其他设备已退出登录", "Password changed; other devices were signed out"],
    ["mobile.heading", "更换手机号", "Change mobile number"],
    ["mobile.submit", "更换手机号", "Change number"],
    ["mobile.saved", "手机号已更换，其他设备已退出登录", "Number changed; other devices were signed out"],
    ["sessions.heading", "登录设备", "Signed-in devices"],
    ["sessions.current", "当前设备", "This device"],
    ["sessions.end", "退出", "Sign out"],
    ["sessions.end_others", "退出其他所有设备", "Sign out all other devices"],
    ["sessions.ended", "已退出", "Signed out"],
    ["sessions.created", "登录于", "Signed in"],
    ["sessions.seen", "最近活动", "Last active"],
    ["sessions.unknown", "未知设备", "Unknown device"],
    ["delete.heading", "注销账号", "Delete account"],
    ["delete.warning", "注销后，资料、头像和实名信息都会被删除，且无法恢复。", "Your profile, avatar and identity data are erased. This cannot be undone."],
    ["delete.confirm", "我确认永久注销此账号", "Yes, delete this account for good"],
    ["delete.submit", "注销账号", "Delete account"],
    ["field.mobile", "手机号", "Mobile number"],
    ["field.new_mobile", "新手机号", "New mobile number"],
    ["field.captcha", "图片验证码", "Picture code"],
    ["field.sms", "短信验证码", "SMS code"],
    ["field.sms.new", "新手机号收到的短信验证码", "SMS code sent to the new number"],
    ["field.password", "密码（至少8位）", "Password (8 characters or more)"],
    ["field.password2", "确认密码", "Repeat password"],
    ["field.password.login", "密码", "Password"],
    ["field.old_password", "当前密码", "Current password"],
    ["field.new_password", "新密码（至少8位）", "New password (8 characters or more)"],
    ["field.new_password2", "确认新密码", "Repeat new password"],
    ["field.name", "用户名", "Name"],
    ["field.avatar", "图片（JPEG、PNG、WebP 或 GIF）", "Picture (JPEG, PNG, WebP or GIF)"],
    ["captcha.alt", "图片验证码，看不清可点击换一张", "Picture code; click for a new one"],
    ["captcha.refresh", "换一张图片验证码", "New picture code"],
    ["sms.send", "获取验证码", "Send code"],
    ["sms.wait", "{n}秒后重发", "Resend in {n}s"],
    ["sms.sent", "验证码已发送，请查收短信", "Code sent; check your messages"],
    ["err.mobile", "请输入手机号", "Enter your mobile number"],
    ["err.captcha", "请输入图片验证码", "Enter the picture code"],
    ["err.fill", "请填写所有字段", "Fill in every field"],
    ["err.mismatch", "两次密码不一致", "The passwords do not match"],
    ["err.avatar", "请先选择一张图片", "Choose a picture first"],
    ["err.confirm", "请先勾选确认", "Tick the box to confirm"],
    ["err.failed", "操作未成功，请稍后再试", "That did not work; please try again"],
    ["err.network", "网络错误，请稍后再试", "Network error, please try again"],
  ];
  const TEXT = { "zh-CN": {}, en: {} };
  for (const [key, zh, en] of ROWS) {
    TEXT["zh-CN"][key] = zh;
    TEXT.en[key] = en;
  }

  const stored = localStorage.getItem("phoneauth.lang");
  let lang = stored || (document.documentElement.lang === "en" ? "en" : "zh-CN");
  // What a page redraws itself when the language changes (dates, lists).
  let onLang = () => {};
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

  // A JSON request, or multipart when `body` is FormData (the browser then
  // writes the Content-Type with its boundary).
  async function api(method, url, body) {
    const headers = { "Accept-Language": lang === "en" ? "en" : "zh-CN" };
    const form = body instanceof FormData;
    if (method !== "GET") {
      const token = cookie("csrf_token");
      if (token) headers["X-CSRFToken"] = token;
      if (!form) headers["Content-Type"] = "application/json";
    }
    const resp = await fetch(url, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : form ? body : JSON.stringify(body)
    });
    let data = {};
    try { data = await resp.json(); } catch (_) { /* not JSON */ }
    return { status: resp.status, retryAfter: parseInt(resp.headers.get("Retry-After") || "0", 10), data };
  }

  // A form's two message lines: role="alert" for errors, role="status" for news.
  function messages(errorId, statusId) {
    const err = $(errorId);
    const status = statusId ? $(statusId) : null;
    return {
      error(msg) {
        err.textContent = msg || "";
        if (msg && status) status.textContent = "";
      },
      ok(msg) {
        err.textContent = "";
        if (status) status.textContent = msg || "";
      }
    };
  }

  // Sends a request for a form. On errno "0" gives back the answer; else
  // shows why (`explain` may word an errno itself) and gives back null. A
  // visitor who is not logged in goes to the login page.
  async function submit(msg, method, url, body, explain) {
    // A new attempt: the last one's words no longer hold.
    msg.ok("");
    try {
      const r = await api(method, url, body);
      const errno = r.data.errno;
      if (errno === "0") return r.data;
      if (errno === "4101") { location.assign("/signin"); return null; }
      msg.error((explain && explain[errno]) || r.data.errmsg || t("err.failed"));
    } catch (_) {
      msg.error(t("err.network"));
    }
    return null;
  }

  function randomId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function masked(m) {
    return m.length > 7 ? m.slice(0, 3) + "****" + m.slice(-4) : m;
  }

  function when(v) {
    const d = new Date(typeof v === "number" ? v * 1000 : v);
    return isNaN(d) ? "" : d.toLocaleString(lang);
  }

  // The ids of a form's picture code and SMS code parts.
  const CODE_IDS = {
    mobile: "mobile", answer: "image_code", img: "captcha-img", refresh: "captcha-refresh",
    send: "send-code", code: "sms_code"
  };

  // A picture code and a "send code" button with its countdown; `request`
  // asks for the code. Gives back `load` for a first (or fresh) picture.
  function codeSender(ids, msg, request) {
    let captchaId = "";
    let timer = null;
    const img = $(ids.img);
    const answerEl = $(ids.answer);
    const sendBtn = $(ids.send);

    function newCaptcha() {
      captchaId = randomId();
      img.src = "/api/v1.0/image_codes/" + captchaId;
      img.dataset.captchaId = captchaId;
      answerEl.value = "";
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
    $(ids.refresh).addEventListener("click", newCaptcha);

    sendBtn.addEventListener("click", async () => {
      const mobile = $(ids.mobile).value.trim();
      const answer = answerEl.value.trim();
      if (!mobile) { msg.error(t("err.mobile")); $(ids.mobile).focus(); return; }
      if (!answer) { msg.error(t("err.captcha")); answerEl.focus(); return; }
      msg.error("");
      try {
        const r = await request(mobile, answer, captchaId);
        if (r.data.errno === "0") {
          msg.ok(t("sms.sent"));
          countdown(60);
          $(ids.code).focus();
        } else {
          msg.error(r.data.errmsg || t("err.failed"));
          if (r.data.errno === "4201" && r.retryAfter > 0 && r.retryAfter <= 3600) countdown(r.retryAfter);
        }
      } catch (_) {
        msg.error(t("err.network"));
      }
      // The captcha was used up by the check, whatever its outcome.
      newCaptcha();
    });

    return { load() { if (!captchaId) newCaptcha(); } };
  }

  // Asks for a code of a purpose (§9); the register page keeps the original GET.
  const codeFor = (purpose) => (mobile, answer, id) =>
    api("POST", "/api/v1.0/sms_codes", { mobile, purpose, image_code: answer, image_code_id: id });

  function register() {
    const msg = messages("form-error", "form-status");
    codeSender(CODE_IDS, msg, (mobile, answer, id) =>
      api("GET", "/api/v1.0/sms_codes/" + encodeURIComponent(mobile) +
        "?image_code=" + encodeURIComponent(answer) + "&image_code_id=" + id)).load();

    $("register-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = {
        mobile: $("mobile").value.trim(), sms_code: $("sms_code").value.trim(),
        password: $("password").value, password2: $("password2").value
      };
      if (!body.mobile || !body.sms_code || !body.password) { msg.error(t("err.fill")); return; }
      if (body.password !== body.password2) { msg.error(t("err.mismatch")); $("password2").focus(); return; }
      if (await submit(msg, "POST", "/api/v1.0/users", body)) location.assign("/account");
    });
  }

  function login() {
    const msg = messages("form-error", "form-status");
    const codes = codeSender(CODE_IDS, msg, codeFor("login"));
    const toggle = $("sms-mode");
    let byCode = false;

    toggle.addEventListener("click", () => {
      byCode = !byCode;
      $("password-part").hidden = byCode;
      $("code-part").hidden = !byCode;
      toggle.dataset.i18n = byCode ? "login.by_password" : "login.by_code";
      toggle.textContent = t(toggle.dataset.i18n);
      msg.ok("");
      if (byCode) codes.load();
      const next = !$("mobile").value.trim() ? "mobile" : byCode ? "image_code" : "password";
      $(next).focus();
    });

    $("login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const mobile = $("mobile").value.trim();
      const body = byCode
        ? { mobile, sms_code: $("sms_code").value.trim() }
        : { mobile, password: $("password").value };
      if (!mobile || !(byCode ? body.sms_code : body.password)) { msg.error(t("err.fill")); return; }
      const url = byCode ? "/api/v1.0/sessions/sms" : "/api/v1.0/sessions";
      if (await submit(msg, "POST", url, body)) location.assign("/account");
    });
  }

  function forgot() {
    const msg = messages("form-error", "form-status");
    codeSender(CODE_IDS, msg, codeFor("reset")).load();

    $("forgot-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = {
        mobile: $("mobile").value.trim(), sms_code: $("sms_code").value.trim(),
        password: $("password").value, password2: $("password2").value
      };
      if (!body.mobile || !body.sms_code || !body.password) { msg.error(t("err.fill")); return; }
      if (body.password !== body.password2) { msg.error(t("err.mismatch")); $("password2").focus(); return; }
      if (await submit(msg, "POST", "/api/v1.0/password/reset", body)) location.assign("/account");
    });
  }

  function account() {
    let user = null;
    let sessions = [];
    const pageMsg = messages("form-error");
    const sessionsMsg = messages("sessions-error", "sessions-status");

    function showUser() {
      $("account-mobile").textContent = masked(user.mobile || "");
      $("account-name").textContent = user.name || "";
      const since = new Date(user.create_time);
      $("account-since").textContent = isNaN(since) ? "" : since.toLocaleDateString(lang);
      showAvatar(user.avatar);
    }

    function showAvatar(url) {
      const img = $("avatar-img");
      img.hidden = !url;
      if (url) img.src = url;
    }

    async function loadUser() {
      const r = await submit(pageMsg, "GET", "/api/v1.0/user");
      if (!r) return;
      user = r.data;
      $("name").value = user.name || "";
      showUser();
    }

    function sessionItem(s) {
      const li = document.createElement("li");
      li.dataset.sessionId = s.id;
      const device = document.createElement("span");
      device.className = "device";
      device.textContent = s.user_agent || t("sessions.unknown");
      device.title = s.user_agent || "";
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = [s.ip, t("sessions.created") + " " + when(s.created),
        t("sessions.seen") + " " + when(s.last_seen)].filter(Boolean).join(" · ");
      li.append(device, meta);
      if (s.current) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = t("sessions.current");
        li.append(badge);
      } else {
        const end = document.createElement("button");
        end.type = "button";
        end.className = "secondary end-session";
        end.textContent = t("sessions.end");
        end.setAttribute("aria-label", t("sessions.end") + ": " + device.textContent);
        end.addEventListener("click", async () => {
          end.disabled = true;
          const done = await submit(sessionsMsg, "DELETE", "/api/v1.0/user/sessions/" + encodeURIComponent(s.id));
          if (done) sessionsMsg.ok(t("sessions.ended"));
          await loadSessions();
          // The button is gone; keep the keyboard in this part of the page.
          $("sessions-heading").focus();
        });
        li.append(end);
      }
      return li;
    }

    function showSessions() {
      $("session-list").replaceChildren(...sessions.map(sessionItem));
      $("end-others").disabled = sessions.every((s) => s.current);
    }

    async function loadSessions() {
      const r = await submit(sessionsMsg, "GET", "/api/v1.0/user/sessions");
      if (!r) return;
      sessions = r.data.sessions || [];
      showSessions();
    }

    onLang = () => {
      if (user) showUser();
      showSessions();
    };

    const nameMsg = messages("name-error", "name-status");
    $("name-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const name = $("name").value.trim();
      if (!name) { nameMsg.error(t("err.fill")); $("name").focus(); return; }
      const r = await submit(nameMsg, "PUT", "/api/v1.0/users/name", { name }, { "4001": t("name.taken") });
      if (!r) return;
      if (user) user.name = (r.data && r.data.name) || name;
      $("account-name").textContent = user ? user.name : name;
      nameMsg.ok(t("name.saved"));
    });

    const avatarMsg = messages("avatar-error", "avatar-status");
    $("avatar-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const file = $("avatar-file").files[0];
      if (!file) { avatarMsg.error(t("err.avatar")); $("avatar-file").focus(); return; }
      const form = new FormData();
      form.append("avatar", file);
      const r = await submit(avatarMsg, "POST", "/api/v1.0/users/avatar", form);
      if (!r) return;
      if (user) user.avatar = r.data.avatar_url;
      showAvatar(r.data.avatar_url);
      $("avatar-file").value = "";
      avatarMsg.ok(t("avatar.saved"));
    });

    const passwordMsg = messages("password-error", "password-status");
    $("password-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = {
        old_password: $("old_password").value, password: $("new_password").value,
        password2: $("new_password2").value
      };
      if (!body.old_password || !body.password) { passwordMsg.error(t("err.fill")); return; }
      if (body.password !== body.password2) { passwordMsg.error(t("err.mismatch")); $("new_password2").focus(); return; }
      if (!await submit(passwordMsg, "PUT", "/api/v1.0/user/password", body)) return;
      ["old_password", "new_password", "new_password2"].forEach((id) => { $(id).value = ""; });
      passwordMsg.ok(t("password.saved"));
      loadSessions();
    });

    const mobileMsg = messages("mobile-error", "mobile-status");
    const mobileCodes = codeSender({
      mobile: "new_mobile", answer: "mobile-captcha", img: "mobile-captcha-img",
      refresh: "mobile-captcha-refresh", send: "mobile-send-code", code: "mobile-sms-code"
    }, mobileMsg, codeFor("change_mobile"));
    // A picture code is made only for someone who starts on this form.
    $("mobile-form").addEventListener("focusin", () => mobileCodes.load());
    $("mobile-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = {
        mobile: $("new_mobile").value.trim(), sms_code: $("mobile-sms-code").value.trim(),
        old_password: $("mobile-password").value
      };
      if (!body.mobile || !body.sms_code || !body.old_password) { mobileMsg.error(t("err.fill")); return; }
      if (!await submit(mobileMsg, "PUT", "/api/v1.0/user/mobile", body)) return;
      ["new_mobile", "mobile-sms-code", "mobile-password"].forEach((id) => { $(id).value = ""; });
      mobileMsg.ok(t("mobile.saved"));
      loadUser();
      loadSessions();
    });

    $("end-others").addEventListener("click", async () => {
      if (await submit(sessionsMsg, "DELETE", "/api/v1.0/user/sessions")) sessionsMsg.ok(t("sessions.ended"));
      await loadSessions();
      if ($("end-others").disabled) $("sessions-heading").focus();
    });

    const deleteMsg = messages("delete-error");
    $("delete-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const password = $("delete-password").value;
      if (!password) { deleteMsg.error(t("err.fill")); $("delete-password").focus(); return; }
      if (!$("delete-confirm").checked) { deleteMsg.error(t("err.confirm")); $("delete-confirm").focus(); return; }
      if (await submit(deleteMsg, "DELETE", "/api/v1.0/user", { password })) location.assign("/register");
    });

    $("logout").addEventListener("click", async () => {
      await api("DELETE", "/api/v1.0/session");
      location.assign("/signin");
    });

    loadUser();
    loadSessions();
  }

  $("lang-switch").addEventListener("click", () => {
    lang = lang === "en" ? "zh-CN" : "en";
    localStorage.setItem("phoneauth.lang", lang);
    applyLang();
    onLang();
  });
  applyLang();
  ({ register, login, forgot, account })[document.body.dataset.page]();
})();
