// The consultation memo's page (bot/webchat/memo.html): show the readings of kanji when the
// resident uses the chat's 「ふりがな」 switch (kept in this browser by chat.js, same origin).
(function () {
  "use strict";
  try {
    if (localStorage.getItem("webchat-furigana") === "1") { document.body.classList.add("furigana"); }
  } catch (e) { /* storage unavailable: readings stay hidden */ }
}());
