// Keyboard culling and the large view for one gallery (run by gr.HTML's js_on_load).
// In scope: element (the component's root), server (its server functions, when it has any), watch.
// A decision flips the card's flag at once; the server stores it in the background, in order.
const KEPT = ["hand_accepted", "auto_accepted"];
const FLAGS = {
  hand_accepted: "★ Kept by you", auto_accepted: "✓ Kept by the rule",
  auto_rejected: "✕ Dropped by the rule", hand_rejected: "✕ Dropped by you", pending: "• Undecided",
};
const canDecide = typeof server !== "undefined" && server && typeof server.decide === "function";
let focusedId = null;      // the card the keys act on, kept across re-renders
let hadFocus = false;      // whether the gallery had the keyboard before a re-render
let queue = [];            // decisions not yet sent
let sending = false;

const cardsOf = () => Array.from(element.querySelectorAll(".card[data-candidate-id]"));
const cardById = (id) => element.querySelector(`.card[data-candidate-id="${id}"]`);

function setFlag(card, decision) {
  if (card.dataset.decision === decision) return;
  card.dataset.decision = decision;
  card.className = card.className.replace(/decision-\S+/, "decision-" + decision);
  const flag = card.querySelector(".card-flag");
  if (flag) flag.textContent = FLAGS[decision] || decision;
  showLargeDecision(card);
}

function largeOpen() {
  const box = document.getElementById("studio-lightbox");
  return box && box.classList.contains("open") && box.owner === element ? box : null;
}

function showLargeDecision(card) {  // the large view shows the decision of the card it holds, as it changes
  const box = largeOpen();
  if (!box || box.dataset.candidateId !== card.dataset.candidateId) return;
  box.dataset.decision = card.dataset.decision;
  const cell = box.querySelector(".lightbox-decision");
  if (cell) cell.textContent = FLAGS[card.dataset.decision] || card.dataset.decision;
}

function recount() {
  const all = cardsOf();
  const head = element.querySelector(".acceptance");
  if (!head || !all.length) return;
  const count = (d) => all.filter((c) => c.dataset.decision === d).length;
  const kept = all.filter((c) => KEPT.includes(c.dataset.decision)).length;
  head.innerHTML = `<b>Kept ${kept} of ${all.length}</b> · by you: ${count("hand_accepted")} kept, ` +
    `${count("hand_rejected")} dropped`;
}

function flush() {
  if (sending || !queue.length || !canDecide) return;
  const batch = queue;
  queue = [];
  sending = true;
  server.decide(JSON.stringify(batch)).then((reply) => {
    const result = typeof reply === "string" ? JSON.parse(reply) : reply;
    if (result && result.decisions) {
      for (const [id, decision] of Object.entries(result.decisions)) {
        const card = cardById(id);
        if (card && !queue.some(([qid]) => qid === id)) setFlag(card, decision);
      }
      recount();
    }
    const curated = element.querySelector(".curated-size");
    if (curated && result && result.curated) curated.innerHTML = result.curated;
    element.dataset.stored = String(Number(element.dataset.stored || 0) + batch.length);
  }).catch((err) => {
    console.error("studio: a decision was not stored", err);
    queue = batch.concat(queue);  // try again with the next decision
  }).finally(() => { sending = false; if (queue.length) flush(); });
}

function decide(card, action) {
  if (!canDecide || !card) return;
  setFlag(card, action === "clear" ? (card.dataset.rule || "pending") : action);
  recount();
  queue.push([card.dataset.candidateId, action]);
  flush();
}

function focusCard(card, scroll = true) {
  if (!card) return;
  cardsOf().forEach((c) => c.classList.toggle("focused", c === card));
  focusedId = card.dataset.candidateId;
  card.focus({ preventScroll: !scroll });
  if (scroll) card.scrollIntoView({ block: "nearest", inline: "nearest" });
  if (lightbox().classList.contains("open") && lightbox().owner === element) openLarge(card);
}

function columns(all) {
  if (!all.length) return 1;
  const top = all[0].offsetTop;
  const n = all.filter((c) => c.offsetTop === top).length;
  return Math.max(n, 1);
}

function move(delta) {
  const all = cardsOf();
  if (!all.length) return;
  const at = Math.max(0, all.findIndex((c) => c.dataset.candidateId === focusedId));
  focusCard(all[Math.min(all.length - 1, Math.max(0, at + delta))]);
}

function current() {
  return cardById(focusedId) || cardsOf()[0];
}

function togglePlay(holder) {  // a card, or the large view's media when it is open
  const audio = holder && holder.querySelector("audio");
  if (!audio) return;
  document.querySelectorAll("audio").forEach((a) => { if (a !== audio) a.pause(); });
  if (audio.paused) audio.play(); else audio.pause();
}

function lightbox() {
  let box = document.getElementById("studio-lightbox");
  if (!box) {
    box = document.createElement("div");
    box.id = "studio-lightbox";
    box.innerHTML = '<div class="lightbox-body"><button class="lightbox-close" title="Close (Esc)">✕</button>' +
      '<div class="lightbox-media"></div><div class="lightbox-details"></div></div>';
    box.addEventListener("click", (e) => {
      if (e.target === box || e.target.classList.contains("lightbox-close")) closeLarge();
    });
    document.addEventListener("keydown", (e) => {
      if (!box.classList.contains("open") || !box.handler) return;
      if (e.key === "Escape") { closeLarge(); e.preventDefault(); return; }
      box.handler(e);
    });
    document.body.appendChild(box);
  }
  return box;
}

function esc(text) {
  const d = document.createElement("div");
  d.textContent = text == null ? "" : String(text);
  return d.innerHTML;
}

function openLarge(card) {
  const box = lightbox();
  const info = JSON.parse(card.dataset.details || "{}");
  const media = card.querySelector(".card-media").cloneNode(true);
  media.querySelectorAll("audio").forEach((a) => a.removeAttribute("preload"));
  box.querySelector(".lightbox-media").replaceChildren(media);
  const rows = [["Prompt", info.prompt], ["Seed", info.seed], ["Version", info.version],
    ["Model", info.model || ""], ["Decision", FLAGS[card.dataset.decision] || card.dataset.decision],
    ["Score (combined)", info.score == null ? "not scored" : Number(info.score).toFixed(3)],
    ["Rule keeps it with probability", info.p == null ? "" : Number(info.p).toFixed(2)]];
  for (const [name, value] of Object.entries(info.scores || {})) rows.push([`Score: ${name}`, Number(value).toFixed(3)]);
  for (const [name, value] of Object.entries(info.settings || {})) rows.push([name, typeof value === "string" ? value : JSON.stringify(value)]);
  const detail = card.querySelector(".card-detail");  // the medium's own line (a voice take: what was heard)
  box.querySelector(".lightbox-details").innerHTML = (detail ? `<div class="lightbox-detail">${detail.innerHTML}</div>` : "") +
    "<table>" +
    rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td${k === "Decision" ? ' class="lightbox-decision"' : ""}>` +
      `${esc(v)}</td></tr>`).join("") + "</table>" +
    (canDecide ? '<p class="lightbox-keys"><kbd>P</kbd> keep · <kbd>X</kbd> drop · <kbd>U</kbd> clear · ' +
      '<kbd>←</kbd><kbd>→</kbd> next · <kbd>Esc</kbd> close</p>' : "");
  box.owner = element;
  box.dataset.candidateId = card.dataset.candidateId;
  box.dataset.decision = card.dataset.decision;
  box.handler = onKey;
  box.classList.add("open");
}

function closeLarge() {
  const box = lightbox();
  box.classList.remove("open");
  box.querySelectorAll("audio").forEach((a) => a.pause());
  box.querySelector(".lightbox-media").replaceChildren();
  if (box.owner === element) { const c = current(); if (c) c.focus({ preventScroll: true }); }
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target.closest && e.target.closest("button, audio, input, textarea") && e.key !== "Escape") {
    if (e.key === " " || e.key === "Enter") return;  // a focused button or player handles these itself
  }
  const all = cardsOf();
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const handled = {
    ArrowRight: () => move(1), ArrowLeft: () => move(-1),
    ArrowDown: () => move(columns(all)), ArrowUp: () => move(-columns(all)),
    p: () => decide(current(), "hand_accepted"), x: () => decide(current(), "hand_rejected"),
    u: () => decide(current(), "clear"),
    " ": () => { const box = largeOpen(); togglePlay(box ? box.querySelector(".lightbox-media") : current()); },
    Enter: () => openLarge(current()),
  }[key];
  if (!handled) return;
  e.preventDefault();
  e.stopPropagation();
  if (!cardById(focusedId) && all.length) {  // the first key picks the first card
    focusCard(all[0]);
    if (key.startsWith("Arrow")) return;
  }
  handled();
}

element.addEventListener("keydown", (e) => {
  if (lightbox().classList.contains("open")) return;  // the large view's own listener handles it
  onKey(e);
});
element.addEventListener("click", (e) => {
  const card = e.target.closest(".card");
  if (!card) return;
  const action = e.target.closest("button[data-action]");
  if (action) { focusCard(card, false); decide(card, action.dataset.action); return; }
  if (e.target.closest("audio")) { focusCard(card, false); return; }
  if (e.target.closest(".card-media")) { focusCard(card, false); openLarge(card); return; }
  focusCard(card, false);
});
element.addEventListener("focusin", () => { hadFocus = true; });
element.addEventListener("focusout", (e) => { if (!element.contains(e.relatedTarget)) hadFocus = false; });

watch("value", () => {
  const card = cardById(focusedId);
  if (card) {
    card.classList.add("focused");
    if (hadFocus) card.focus({ preventScroll: true });
  }
});

// While a generate waits behind another on the same model, the status tracker in a corner of this block says
// where: Gradio's "queue: 2/3" (more requests than run at once), or the engine's line of model calls, "Waiting for
// its turn (1 of 2 waiting; made together with 1 other request like it)" (generate_panel.waiting_line).  The
// waiting gallery says it in words (and nothing once the generate runs).
const block = element.closest(".block") || element.parentElement;
if (block) {
  new MutationObserver(() => {
    const line = element.querySelector(".gallery[data-waiting] .gallery-queue");
    if (!line) return;
    const tracker = Array.from(block.querySelectorAll("*")).find((el) => !element.contains(el) &&
      /^\s*(queue: \d+\/\d+|Waiting for its turn \(\d+ of \d+)/.test(el.textContent || ""));
    const text = tracker ? tracker.textContent : "";
    const place = text.match(/queue: (\d+)\/(\d+)/) || text.match(/Waiting for its turn \((\d+) of (\d+) waiting/);
    const joined = text.match(/made together with (\d+) other requests? like it/);
    const together = joined ? `; made together with ${joined[1]} other request${joined[1] === "1" ? "" : "s"} ` +
      "like it" : "";
    const words = place ? `Waiting for its turn: another batch is being made on this model (${place[1]} of ` +
      `${place[2]} waiting${together}).` : "";
    if (line.textContent !== words) line.textContent = words;
  }).observe(block, { childList: true, subtree: true, characterData: true });
}
