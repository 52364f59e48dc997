// Progressive touches for the viewer; every page works without them.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Ask before a form marked data-confirm deletes anything.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // Live character count of a block being edited, red past its limit.
  for (const area of document.querySelectorAll("textarea[data-limit]")) {
    const count = document.querySelector(`.count[data-for="${area.id}"]`);
    if (!count) continue;
    const limit = Number(area.dataset.limit);
    const update = () => {
      const used = area.value.replace(/\r\n/g, "\n").length;
      count.textContent = String(used);
      count.classList.toggle("over", used > limit);
    };
    area.addEventListener("input", update);
    update();
  }
});
