// Small progressive enhancements; every page works without this file.
document.addEventListener("htmx:afterSwap", (event) => {
  // Move focus to the first invalid field or status line after a swap, for keyboard users.
  const target = event.detail.target;
  const focusable = target.querySelector("[aria-invalid='true'], [role='status'][tabindex='-1']");
  if (focusable) focusable.focus();
});
