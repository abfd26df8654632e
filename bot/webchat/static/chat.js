// The resident web chat. Talks to the assistant over socket.io (bot/channels/webchat.py).
// The conversation is bound to a session the server issued and signed; the page only keeps it:
// for this tab only (sessionStorage) unless the resident ticks 「この端末で続きを保存する」 (then
// also in localStorage, so a later visit resumes it). 「会話を終わる」 ends the session on the
// server (its token is refused from then on) and clears the page (issue #14, shared screens).
(function () {
  "use strict";
  var TOKEN_KEY = "funabashi-infobank-session";
  var messages = document.getElementById("messages");
  var replies = document.getElementById("quick-replies");
  var form = document.getElementById("composer");
  var input = document.getElementById("input");
  var statusLine = document.getElementById("status");
  var remember = document.getElementById("remember");
  var endButton = document.getElementById("end-session");
  var composing = false;
  var notice = false;  // the status line says the conversation ended: kept until the next message
  function clearStatus() { if (!notice) { statusLine.textContent = ""; } }

  function show(text, who, readings) {
    var item = document.createElement("li");
    item.className = who;
    if (who === "bot") {
      var body = document.createElement("div");
      body.className = "text";
      fillWithReadings(body, text, readings);
      item.appendChild(body);
      item.appendChild(speakButton(text));
      announce(text);
    } else {
      item.textContent = text;  // never HTML: answers and input are shown as plain text
    }
    messages.appendChild(item);
    item.scrollIntoView({ block: "end" });
  }

  // ふりがな (issue 16): the server sends each answer's text with its readings as data, a list of
  // [surface, reading or null] (bot/webchat/furigana.py). They are built into <ruby> with text nodes
  // only, never HTML; the readings show while the 「ふりがな」 switch is on (body.furigana, CSS).
  // Readings that do not give back the text exactly are ignored (plain text is shown).
  function fillWithReadings(container, text, readings) {
    var valid = Array.isArray(readings) && readings.every(function (segment) {
      return Array.isArray(segment) && typeof segment[0] === "string" &&
        (segment[1] === null || typeof segment[1] === "string");
    }) && readings.map(function (segment) { return segment[0]; }).join("") === text;
    if (!valid) { container.textContent = text; return; }
    readings.forEach(function (segment) {
      if (!segment[1]) { container.appendChild(document.createTextNode(segment[0])); return; }
      var ruby = document.createElement("ruby");
      ruby.appendChild(document.createTextNode(segment[0]));
      var rt = document.createElement("rt");
      rt.textContent = segment[1];
      rt.setAttribute("aria-hidden", "true");  // a visual aid: screen readers read the word
      ruby.appendChild(rt);
      container.appendChild(ruby);
    });
  }

  // New answers are announced to screen readers by this polite live region (the message list
  // itself is a log that is not read out, so readings and buttons are not announced with them).
  var announcer = document.getElementById("announcer");
  function announce(text) {
    var line = document.createElement("p");
    line.textContent = text;
    announcer.appendChild(line);
    while (announcer.childNodes.length > 3) { announcer.removeChild(announcer.firstChild); }
  }

  // 読み上げ (issue 16): each answer has a button that speaks it with the browser's own speech
  // synthesis in Japanese; nothing goes to a server. The buttons show only when the browser has
  // a Japanese voice (body.can-speak), found at once or after `voiceschanged` or a short wait.
  var speech = window.speechSynthesis || null;
  var japaneseVoice = null;
  function findJapaneseVoice() {
    if (!speech || typeof speech.getVoices !== "function") { return null; }
    var voices = speech.getVoices() || [];
    for (var i = 0; i < voices.length; i += 1) {
      if (/^ja([-_]|$)/i.test(String(voices[i].lang || ""))) { return voices[i]; }
    }
    return null;
  }
  function noteVoices() {
    japaneseVoice = findJapaneseVoice();
    document.body.classList.toggle("can-speak", !!japaneseVoice);
  }
  if (speech) {
    noteVoices();
    if (typeof speech.addEventListener === "function") {
      speech.addEventListener("voiceschanged", noteVoices);
    }
    setTimeout(noteVoices, 1500);  // some browsers load their voices late without an event
  }
  function speakButton(text) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "speak";
    button.textContent = "読み上げる";
    button.addEventListener("click", function () {
      if (!speech || !japaneseVoice) { return; }
      speech.cancel();
      var utterance = new SpeechSynthesisUtterance(text);
      utterance.lang = "ja-JP";
      try { utterance.voice = japaneseVoice; } catch (e) { /* the language alone chooses it */ }
      speech.speak(utterance);
    });
    return button;
  }

  function showReplies(list) {
    replies.textContent = "";
    (list || []).forEach(function (reply) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = reply.title;
      button.addEventListener("click", function () {
        notice = false;
        show(reply.title, "me");
        replies.textContent = "";
        socket.emit("user_uttered", { payload: reply.payload });
      });
      replies.appendChild(button);
    });
  }

  // The consultation memo (issue 18): a link to its print page, opened in a new tab. Only a
  // relative link of the server's own shape is taken (text node, never HTML).
  function showMemoLink(link) {
    if (!link || !/^memo\/[A-Za-z0-9_-]{43}$/.test(String(link.url))) { return; }
    var item = document.createElement("li");
    item.className = "bot memo-link";
    var anchor = document.createElement("a");
    anchor.href = link.url;
    anchor.target = "_blank";
    anchor.rel = "noopener noreferrer";
    anchor.textContent = String(link.title || "");
    item.appendChild(anchor);
    messages.appendChild(item);
    anchor.scrollIntoView({ block: "nearest" });
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
  toggle("toggle-furigana", "furigana", "webchat-furigana");

  // やさしい日本語 (plain mode, issue 16): the assistant remembers the mode for the conversation;
  // this button sends the switch (one of the page's own payloads the channel accepts) and shows
  // the mode the answers last implied: an answer offering "switch off" means it is on.
  var plainButton = document.getElementById("toggle-plain");
  var PLAIN_ON = "/plain_japanese_on";
  var PLAIN_OFF = "/plain_japanese_off";
  function showPlain(on) { plainButton.setAttribute("aria-pressed", on ? "true" : "false"); }
  plainButton.addEventListener("click", function () {
    if (!socket) { return; }
    var on = plainButton.getAttribute("aria-pressed") !== "true";
    notice = false;
    show(on ? "やさしい日本語で" : "ふつうの日本語に戻して", "me");
    replies.textContent = "";
    socket.emit("user_uttered", { payload: on ? PLAIN_ON : PLAIN_OFF });
    showPlain(on);
  });
  function notePlain(list) {
    (list || []).forEach(function (reply) {
      if (reply.payload === PLAIN_OFF) { showPlain(true); }
      if (reply.payload === PLAIN_ON) { showPlain(false); }
    });
  }

  // A kept session, if it is well formed and not about to expire.
  function validSession(raw) {
    try {
      var saved = JSON.parse(raw || "null");
      if (saved && typeof saved.token === "string" && saved.expires_at * 1000 > Date.now() + 60000) {
        return saved;
      }
    } catch (e) { /* a damaged entry counts as none */ }
    return null;
  }

  // Where the session comes from: this tab (a reload: the conversation simply goes on), else this
  // device, saved on an earlier visit with the tick (resumed: the assistant asks who is there
  // before showing or withdrawing consents), else nowhere (a new session).
  function loadSession() {
    var tab = validSession(sessionStorage.getItem(TOKEN_KEY));
    var kept = validSession(localStorage.getItem(TOKEN_KEY));
    if (!kept) { localStorage.removeItem(TOKEN_KEY); }
    if (tab) { return { saved: tab, mode: "continue", kept: !!kept && kept.token === tab.token }; }
    if (kept) {
      sessionStorage.setItem(TOKEN_KEY, JSON.stringify(kept));
      return { saved: kept, mode: "resumed", kept: true };
    }
    return null;
  }

  // Keep the session for this tab; on this device too only while the box is ticked.
  function keep(saved) {
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify(saved));
    if (remember.checked) { localStorage.setItem(TOKEN_KEY, JSON.stringify(saved)); }
    else { localStorage.removeItem(TOKEN_KEY); }
  }

  function forget() {
    sessionStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(TOKEN_KEY);
  }

  var current = null;
  remember.addEventListener("change", function () {
    if (current) { keep(current); } else if (!remember.checked) { localStorage.removeItem(TOKEN_KEY); }
  });

  function newSession() {
    return fetch("session", { method: "POST", credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error("session " + r.status); } return r.json(); })
      .then(function (saved) { current = saved; keep(saved); return saved; });
  }

  function startNew() {
    newSession().then(function (fresh) { connect(fresh, "new", true); }).catch(function () {
      statusLine.textContent = "チャットを始められませんでした。しばらくしてから、もう一度お試しください。";
    });
  }

  var socket = null;
  function close() {
    if (socket) { socket.off(); socket.close(); socket = null; }
  }

  // Clear the page and the kept session, then start a new session for whoever comes next.
  function wipe(message) {
    close();
    forget();
    current = null;
    remember.checked = false;
    messages.textContent = "";
    announcer.textContent = "";
    if (speech) { speech.cancel(); }
    replies.textContent = "";
    input.value = "";
    showPlain(false);  // a new session starts in the usual wording
    statusLine.textContent = message;
    notice = true;
    startNew();
  }

  endButton.addEventListener("click", function () {
    var ending = socket;
    if (!ending || !ending.connected) { wipe("画面の会話を消しました。"); return; }
    ending.timeout(5000).emit("session_end", null, function (error, answer) {
      if (socket !== ending) { return; }  // already cleared by "session_ended"
      wipe(!error && answer && answer.ended ? "会話を終わりました。" : "画面の会話を消しました。");
    });
  });

  function connect(saved, mode, retried) {
    current = saved;
    socket = io({ path: "/socket.io", auth: { token: saved.token }, transports: ["websocket", "polling"] });
    socket.on("connect", function () {
      clearStatus();
      if (mode === "new") { socket.emit("session_start"); }
      if (mode === "resumed") { socket.emit("session_resume"); }
      mode = "continue";
    });
    socket.on("connect_error", function () {
      if (mode !== "new" && !retried) {  // a kept session the server no longer accepts: start anew
        close();
        forget();
        startNew();
        return;
      }
      statusLine.textContent = "接続できませんでした。しばらくしてから、ページを読み込み直してください。";
    });
    // The session was ended (in this tab or another): nothing of it stays on the screen.
    socket.on("session_ended", function () { wipe("会話を終わりました。"); });
    socket.on("disconnect", function () { statusLine.textContent = "接続が切れました。再接続しています…"; });
    // The server is answering too many messages at once: this one was not received.
    socket.on("busy", function () {
      statusLine.textContent = "ただいま混み合っています。少し待ってから、もう一度送ってください。";
    });
    socket.on("bot_uttered", function (message) {
      clearStatus();
      if (message.text) { show(message.text, "bot", message.furigana); }
      if (message.quick_replies) { showReplies(message.quick_replies); notePlain(message.quick_replies); }
      if (message.memo_link) { showMemoLink(message.memo_link); }
    });
  }

  function send() {
    var text = input.value.trim();
    if (!text || !socket) { return; }
    notice = false;
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

  var loaded = loadSession();
  if (loaded) {
    remember.checked = loaded.kept;
    connect(loaded.saved, loaded.mode, false);
  } else {
    startNew();
  }
})();
