// The page's file chooser, answered from the person's device: the relay says the page opened
// one (`file`), the person picks files with their own picker (the camera on a phone where the
// page's input asks for it), and the bytes go over the data channel in binary chunks after a
// `file` message that announces them (docs/protocol.md). The relay answers `fileDone`.

import { formatSize } from "./i18n.js";

const CHUNK_BYTES = 64 * 1024;
const HIGH_WATER_BYTES = 1024 * 1024; // queued in the channel before we wait for it to drain
// What the relay accepts as a media type; anything else goes as "" (unknown).
const MEDIA_TYPE = /^[A-Za-z0-9][\w.+-]*\/[\w.+-]+$/;

export function fileChooser({ $, t, lang, send, getChannel, note, canAnswer, backToPage }) {
  const dialog = $("file-dialog"), input = $("file-input"), status = $("file-status");
  const progress = $("file-progress");
  let chooser = null; // the relay's `file` message we answer
  let sending = null; // the files on their way, until the relay says fileDone

  function say(text) { status.textContent = text; }
  function ready() {
    sending = null;
    progress.hidden = true;
    $("file-choose").hidden = false;
    input.value = "";
  }

  function show(msg) {
    if (!canAnswer()) return;
    chooser = msg;
    input.multiple = !!msg.multiple;
    input.accept = msg.accept || "";
    if (msg.capture) input.setAttribute("capture", msg.capture);
    else input.removeAttribute("capture");
    $("file-title").textContent = t(msg.multiple ? "fileTitleMany" : "fileTitle");
    $("file-choose-text").textContent = t(msg.multiple ? "fileChooseMany" : "fileChoose");
    $("file-hint").textContent = t("fileLimit", { size: formatSize(msg.maxBytes, lang) });
    say("");
    ready();
    if (!dialog.open) dialog.showModal();
    $("file-choose").focus();
  }

  async function upload() {
    const files = Array.from(input.files || []);
    const asked = chooser;
    if (!asked || !files.length || sending) return;
    const total = files.reduce((sum, f) => sum + f.size, 0);
    if (total > asked.maxBytes) {
      input.value = "";
      return say(t("fileTooLarge", { size: formatSize(total, lang), limit: formatSize(asked.maxBytes, lang) }));
    }
    if (files.length > 1 && !asked.multiple) return say(t("fileTooMany"));
    const channel = getChannel();
    if (!channel || channel.readyState !== "open") return say(t("fileLost"));
    sending = { id: asked.id, names: files.map((f) => f.name).join(", "), total };
    $("file-choose").hidden = true;
    progress.hidden = false;
    progress.value = 0;
    send({ t: "file", id: asked.id, f: files.map((f) => ({
      n: f.name.slice(0, 200), s: f.size, m: MEDIA_TYPE.test(f.type) && f.type.length <= 100 ? f.type : "",
    })) });
    channel.bufferedAmountLowThreshold = HIGH_WATER_BYTES / 4;
    let sent = 0;
    for (const file of files) {
      for (let at = 0; at < file.size; at += CHUNK_BYTES) {
        const bytes = await file.slice(at, at + CHUNK_BYTES).arrayBuffer();
        while (channel.readyState === "open" && channel.bufferedAmount > HIGH_WATER_BYTES) {
          await new Promise((resolve) => channel.addEventListener("bufferedamountlow", resolve, { once: true }));
        }
        if (chooser !== asked || getChannel() !== channel || channel.readyState !== "open") {
          ready();
          return say(chooser === asked ? t("fileLost") : "");
        }
        channel.send(bytes);
        sent += bytes.byteLength;
        progress.value = sent / total;
        say(t("fileSending", { percent: Math.floor((100 * sent) / total) }));
      }
    }
    say(t("fileSetting"));
  }

  function done(msg) {
    if (!chooser || msg.id !== chooser.id) return;
    const was = sending || { names: "", total: 0 };
    ready();
    if (msg.ok) {
      close();
      note(t("fileSent", { name: was.names }));
    } else if (msg.error === "gone") {
      close();
      note(t("fileGone"));
    } else {
      say(t({ tooLarge: "fileTooLarge", tooMany: "fileTooMany" }[msg.error] || "fileFailed", {
        size: formatSize(was.total, lang), limit: formatSize(msg.maxBytes || 0, lang),
      }));
    }
  }

  // The person chose none: the page hears `cancel`, as after its own picker.
  function cancel() {
    if (chooser) send({ t: "file", id: chooser.id, cancel: true });
    close();
  }

  function close() {
    chooser = null;
    ready();
    if (dialog.open) dialog.close();
    backToPage();
  }

  // A new connection: bytes on their way were lost with the old one; the relay shows the
  // chooser again if it still waits.
  function reset() {
    if (sending) { ready(); say(t("fileLost")); }
  }

  input.addEventListener("change", () => { upload().catch(() => { ready(); say(t("fileFailed")); }); });
  $("file-cancel").addEventListener("click", cancel);
  dialog.addEventListener("cancel", (e) => { e.preventDefault(); cancel(); });
  return { show, done, close, reset };
}
