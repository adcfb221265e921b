// Small progressive enhancements; every page works without this file.
document.addEventListener("htmx:afterSwap", (event) => {
  // Move focus to the first invalid field or status line after a swap, for keyboard users.
  // Inline validation re-renders the field just left: focus stays where the user went.
  const source = event.detail.requestConfig && event.detail.requestConfig.elt;
  if (source && source.closest("[data-inline-validate]")) return;
  // An outerHTML swap detaches the old target; the event itself fires on the new content.
  const target = event.detail.target.isConnected ? event.detail.target : event.target;
  const focusable = target.querySelector(
    "[aria-invalid='true'], [role='status'][tabindex='-1'], [data-focus-after-swap]",
  );
  if (focusable) focusable.focus();
});

// Member search results (staff forms): buttons that fill the username field. The list is
// keyboard-usable: ArrowDown from the field enters it, arrows move, Escape closes it.
function pickList(input) {
  const form = input.closest("form");
  return form && form.querySelector("[data-picklist]");
}

document.addEventListener("click", (event) => {
  const pick = event.target.closest("[data-pick-username]");
  if (!pick) return;
  const list = pick.closest("[data-picklist]");
  const form = pick.closest("form");
  const input = form && form.querySelector("input[name='username']");
  if (!input || !list) return;
  input.value = pick.dataset.pickUsername;
  list.replaceChildren();
  // "change" runs the field's validation and the grant preview, as typing would.
  input.dispatchEvent(new Event("change", { bubbles: true }));
  const next = list.dataset.pickNext && form.querySelector(list.dataset.pickNext);
  (next || input).focus();
});

document.addEventListener("keydown", (event) => {
  const el = event.target;
  if (!(el instanceof HTMLElement)) return;
  if (el.matches("input[name='username'][aria-controls]")) {
    const list = pickList(el);
    if (!list) return;
    if (event.key === "ArrowDown") {
      const first = list.querySelector("[data-pick-username]");
      if (first) { event.preventDefault(); first.focus(); }
    } else if (event.key === "Escape") {
      list.replaceChildren();
    }
    return;
  }
  if (!el.matches("[data-pick-username]")) return;
  const picks = Array.from(el.closest("[data-picklist]").querySelectorAll("[data-pick-username]"));
  const index = picks.indexOf(el);
  const input = el.closest("form").querySelector("input[name='username']");
  if (event.key === "ArrowDown" && index < picks.length - 1) {
    event.preventDefault(); picks[index + 1].focus();
  } else if (event.key === "ArrowUp") {
    event.preventDefault(); (index > 0 ? picks[index - 1] : input).focus();
  } else if (event.key === "Escape") {
    el.closest("[data-picklist]").replaceChildren(); input.focus();
  }
});

// Copy buttons (a new API key): hidden without JavaScript, where the field is selectable.
document.querySelectorAll("[data-copy]").forEach((button) => { button.hidden = false; });
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const field = document.querySelector(button.dataset.copy);
  const status = button.parentElement.querySelector("[data-copy-status]");
  if (!field) return;
  try {
    await navigator.clipboard.writeText(field.value);
    if (status) status.textContent = "Copied.";
  } catch {
    field.select();
    if (status) status.textContent = "Press Ctrl+C (⌘C) to copy.";
  }
});
