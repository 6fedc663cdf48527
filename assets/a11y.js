// Screen readers: Streamlit draws its Material icons as ligature text ("check_circle", "arrow_forward"),
// which a screen reader read before every message and link ("check_circle Region OK"). Marked hidden
// from it here as they appear (loaded once by app.py; the icons stay on screen).
(function () {
  if (window.__cropmapIconsHidden) { return; }
  window.__cropmapIconsHidden = true;
  var root = document, icons = '[data-testid="stIconMaterial"], [data-testid="stAlertDynamicIcon"]';
  function hide(node) {
    if (node.nodeType !== 1) { return; }
    if (node.matches(icons)) { node.setAttribute('aria-hidden', 'true'); }
    node.querySelectorAll(icons).forEach(function (icon) { icon.setAttribute('aria-hidden', 'true'); });
  }
  hide(root.body);
  new MutationObserver(function (changes) {
    changes.forEach(function (change) { change.addedNodes.forEach(hide); });
  }).observe(root.body, {childList: true, subtree: true});
})();
