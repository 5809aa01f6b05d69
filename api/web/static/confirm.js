// Asking before something that cannot be undone (a deletion, a
// revocation): a modal <dialog>, which keeps the keyboard inside it and
// closes on Escape, rather than window.confirm, which blocks the page.
import { el, on } from "./dom.js";

// confirmAction asks question and resolves true when the user chooses
// action, false when they cancel (the button, Escape).
export function confirmAction(question, action) {
  return new Promise((resolve) => {
    const cancel = el("button", { type: "button", class: "secondary" }, "Cancel");
    const ok = el("button", { type: "button", class: "danger" }, action);
    const text = el("p", { id: "confirm-question" }, question);
    const dialog = el("dialog", { class: "confirm", "aria-labelledby": "confirm-question" },
      text, el("div", { class: "confirm-actions" }, cancel, ok));
    let answer = false;
    on(cancel, "click", () => dialog.close());
    on(ok, "click", () => {
      answer = true;
      dialog.close();
    });
    on(dialog, "close", () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus(); // the safe choice is the one Enter takes
  });
}
