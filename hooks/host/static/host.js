// Progressive help for the host's pages: fields that follow another field, and copy buttons.
(function () {
  "use strict";
  function currentValue(form, name) {
    var checked = form.querySelector('input[type=radio][name="' + name + '"]:checked');
    if (checked) return checked.value;
    var el = form.querySelector('[name="' + name + '"]');
    return el ? el.value : null;
  }
  function refresh(form) {
    form.querySelectorAll("[data-show-key]").forEach(function (el) {
      var hide = currentValue(form, el.dataset.showKey) !== el.dataset.showEquals;
      el.hidden = hide;
      // A hidden choice is not submitted: it belongs to the other traffic type.
      el.querySelectorAll("input, select").forEach(function (input) { input.disabled = hide; });
    });
  }
  document.querySelectorAll("form.settings").forEach(function (form) {
    form.addEventListener("change", function () { refresh(form); });
    refresh(form);
  });
  // A copy button says what happened for a couple of seconds ("Скопировано" / "Copied"), and
  // the page's live region says it to screen readers. Without the clipboard API (a page not
  // served over https, a refused permission) the text is copied the old way, or left selected
  // with "press Ctrl+C".
  var SHOWN_MS = 2000;
  function tell(button, copied) {
    var text = copied ? button.dataset.copied : button.dataset.copyManual;
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = text;
    button.classList.toggle("copied", copied);
    var status = document.getElementById("copy-status");
    if (status) status.textContent = text;
    clearTimeout(button.copyTimer);
    button.copyTimer = setTimeout(function () {
      button.textContent = button.dataset.label;
      button.classList.remove("copied");
      if (status && status.textContent === text) status.textContent = "";
    }, SHOWN_MS);
  }
  function copyBySelection(button, target) {
    target.focus();
    target.select();
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
    tell(button, copied);
  }
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var target = document.getElementById(button.dataset.copy);
      if (!target) return;
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(target.value).then(
          function () { tell(button, true); },
          function () { copyBySelection(button, target); }
        );
      } else {
        copyBySelection(button, target);
      }
    });
  });
})();
