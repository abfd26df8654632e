// The resident web chat. Talks to the assistant over socket.io (bot/channels/webchat.py).
// The conversation is bound to a session the server issued and signed; the page only keeps it.
(function () {
  "use strict";
  var TOKEN_KEY = "funabashi-infobank-session";
  var messages = document.getElementById("messages");
  var replies = document.getElementById("quick-replies");
  var form = document.getElementById("composer");
  var input = document.getElementById("input");
  var statusLine = document.getElementById("status");
  var composing = false;

  function show(text, who) {
    var item = document.createElement("li");
    item.className = who;
    item.textContent = text;  // never HTML: answers and input are shown as plain text
    messages.appendChild(item);
    item.scrollIntoView({ block: "end" });
  }

  function showReplies(list) {
    replies.textContent = "";
    (list || []).forEach(function (reply) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = reply.title;
      button.addEventListener("click", function () {
        show(reply.title, "me");
        replies.textContent = "";
        socket.emit("user_uttered", { payload: reply.payload });
      });
      replies.appendChild(button);
    });
  }

  function toggle(id, cls, key) {
    var button = document.getElementById(id);
    function apply(on) {
      document.body.classList.toggle(cls, on);
      button.setAttribute("aria-pressed", on ? "true" : "false");
    }
    apply(localStorage.getItem(key) === "1");
    button.addEventListener("click", function () {
      var on = !document.body.classList.contains(cls);
      localStorage.setItem(key, on ? "1" : "0");
      apply(on);
    });
  }
  toggle("toggle-large", "large", "webchat-large");
  toggle("toggle-contrast", "contrast", "webchat-contrast");

  function storedToken() {
    try {
      var saved = JSON.parse(localStorage.getItem(TOKEN_KEY) || "null");
      if (saved && saved.expires_at * 1000 > Date.now() + 60000) { return saved.token; }
    } catch (e) { /* a damaged entry is replaced below */ }
    return null;
  }

  function newToken() {
    return fetch("session", { method: "POST", credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error("session " + r.status); } return r.json(); })
      .then(function (saved) { localStorage.setItem(TOKEN_KEY, JSON.stringify(saved)); return saved.token; });
  }

  var socket = null;
  function connect(token, isNew, retried) {
    socket = io({ path: "/socket.io", auth: { token: token }, transports: ["websocket", "polling"] });
    socket.on("connect", function () {
      statusLine.textContent = "";
      if (isNew) { socket.emit("session_start"); isNew = false; }
    });
    socket.on("connect_error", function () {
      if (!isNew && !retried) {  // a stored session the server no longer accepts: start anew
        socket.close();
        localStorage.removeItem(TOKEN_KEY);
        newToken().then(function (fresh) { connect(fresh, true, true); }).catch(function () {
          statusLine.textContent = "チャットを始められませんでした。しばらくしてから、もう一度お試しください。";
        });
        return;
      }
      statusLine.textContent = "接続できませんでした。しばらくしてから、ページを読み込み直してください。";
    });
    socket.on("disconnect", function () { statusLine.textContent = "接続が切れました。再接続しています…"; });
    // The server is answering too many messages at once: this one was not received.
    socket.on("busy", function () {
      statusLine.textContent = "ただいま混み合っています。少し待ってから、もう一度送ってください。";
    });
    socket.on("bot_uttered", function (message) {
      statusLine.textContent = "";
      if (message.text) { show(message.text, "bot"); }
      if (message.quick_replies) { showReplies(message.quick_replies); }
    });
  }

  function send() {
    var text = input.value.trim();
    if (!text || !socket) { return; }
    show(text, "me");
    replies.textContent = "";
    socket.emit("user_uttered", { message: text });
    input.value = "";
  }

  // Japanese input: Enter while converting kana to kanji confirms the conversion, never sends.
  input.addEventListener("compositionstart", function () { composing = true; });
  input.addEventListener("compositionend", function () { composing = false; });
  input.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.shiftKey) { return; }
    if (event.isComposing || composing || event.keyCode === 229) { return; }
    event.preventDefault();
    send();
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); send(); });

  var token = storedToken();
  if (token) {
    connect(token, false, false);
  } else {
    newToken().then(function (fresh) { connect(fresh, true, true); }).catch(function () {
      statusLine.textContent = "チャットを始められませんでした。しばらくしてから、もう一度お試しください。";
    });
  }
})();
