// What the chat and settings pages share: asking before something that
// cannot be undone, and saying what went wrong.
import { el, on } from "./dom.js";

// failure says in status that what failed, with the server's sentence,
// unless err means the user's session is over: ctx.signedOut (app.js)
// then takes them to the sign-in form.
export function failure(ctx, status, what, err) {
  if (ctx.signedOut(err)) {
    return;
  }
  status.textContent = `${what}: ${err.message}`;
  status.classList.add("error");
}

// confirmAction asks question and resolves true when the user chooses
// action, false when they cancel (the button, Escape): a modal <dialog>,
// which keeps the keyboard inside it, rather than window.confirm, which
// blocks the page.
export function confirmAction(question, action) {
  return new Promise((resolve) => {
    const cancel = el("button", { type: "button", class: "secondary" }, "Cancel");
    const ok = el("button", { type: "button", class: "danger" }, action);
    const text = el("p", { id: "confirm-question" }, question);
    const dialog = el("dialog", { class: "confirm", "aria-labelledby": "confirm-question" },
      text, el("div", { class: "actions" }, cancel, ok));
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
