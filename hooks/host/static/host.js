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
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var target = document.getElementById(button.dataset.copy);
      if (!target) return;
      target.select();
      if (navigator.clipboard) navigator.clipboard.writeText(target.value).catch(function () {});
      else document.execCommand("copy");
    });
  });
})();
