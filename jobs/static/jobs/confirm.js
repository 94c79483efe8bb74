/* Asks before submitting a form marked data-confirm="question" (no inline handlers: Content-Security-Policy). */
document.addEventListener("submit", function (event) {
  "use strict";
  var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
