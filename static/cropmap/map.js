/* The dashboard's own map behaviours (written for this project, not from npm).
 *
 * Each is a function of window.cropmap that a map's script calls with its Leaflet map and the
 * options Python gives it (pages/components/mapview.py: one small element per call). Loaded once
 * per map frame, after Leaflet; the styles of what they draw are in map.css. */
(function () {
  'use strict';
  var cropmap = window.cropmap = window.cropmap || {};
  // the dynamic layers' legend titles and colours' opacities, by layer name (see dynamicTitle)
  var titles = {}, opacities = {};
  // what the page read at the last click: [text, lat, lng] or null (see readout)
  var reading = null, showReading = null;

  /* Sets the titles and swatch opacities of the legends under ``root`` to those of their dynamic layers. */
  cropmap.legends = function (root) {
    root.querySelectorAll('[data-cropmap-legend]').forEach(function (e) {
      var v = titles[e.getAttribute('data-cropmap-legend')];
      if (v) { e.textContent = v; }
    });
    root.querySelectorAll('[data-cropmap-swatch]').forEach(function (e) {
      var v = opacities[e.getAttribute('data-cropmap-swatch')];
      if (v !== undefined) { e.style.opacity = v; }
    });
  };

  /* A box inside the map at ``position`` showing ``content``: text, or (``html``) the project's own
   * HTML (legends, whose dynamic titles are filled in). Pointed at, a legend fades, so that what lies
   * under it shows. With ``givesWay``, the box is hidden while it would run into the legends of the
   * bottom-right corner (on a narrow map: a note that the page says above the map too). */
  cropmap.note = function (map, content, position, html, givesWay) {
    if (position === 'bottomleft') { aboveAttribution(map); }
    var control = L.control({position: position});
    control.onAdd = function () {
      var d = L.DomUtil.create('div', 'cropmap-note');
      if (html) {
        d.innerHTML = content;
        cropmap.legends(d);
        d.classList.add('cropmap-fades');
      } else {
        d.textContent = content;
      }
      if (givesWay) { setTimeout(function () { giveWay(map, d); }, 0); }  // (once the legends are in place)
      return d;
    };
    control.addTo(map);
    return control;
  };

  /* Hides ``note`` (kept in the layout, so that it is measured still) whenever it overlaps a box of
   * the map's bottom-right corner; checked as the map or those boxes change size (a legend's title
   * changes with the threshold). */
  function giveWay(map, note) {
    if (!window.ResizeObserver) { return; }
    var box = map.getContainer(), corner = box.querySelector('.leaflet-bottom.leaflet-right');
    if (!corner) { return; }
    function overlaps(a, b) {
      return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    }
    function check() {
      var mine = note.getBoundingClientRect(), hit = false;
      corner.querySelectorAll('.cropmap-note').forEach(function (other) {
        if (overlaps(mine, other.getBoundingClientRect())) { hit = true; }
      });
      note.style.visibility = hit ? 'hidden' : '';
    }
    var watch = new ResizeObserver(check);
    watch.observe(box);
    corner.querySelectorAll('.cropmap-note').forEach(function (other) { watch.observe(other); });
    check();
  }

  /* Keeps the notes of the map's bottom-left corner above the attribution line of its bottom-right
   * corner, however many lines that takes: on a narrow map it wraps to two, and hid "Basemap tiles
   * did not load" under it (map.css sets one line's height, for the first paint). */
  function aboveAttribution(map) {
    if (map._cropmapAboveAttribution || !window.ResizeObserver) { return; }
    var box = map.getContainer(), attribution = box.querySelector('.leaflet-control-attribution'),
      corner = box.querySelector('.leaflet-bottom.leaflet-left');
    if (!attribution || !corner) { return; }
    map._cropmapAboveAttribution = true;
    new ResizeObserver(function () {
      corner.style.bottom = Math.max(16, attribution.offsetHeight) + 'px';
    }).observe(attribution);
  }

  /* The map's height (CSS), set in its script: a new height is a new script, so a new map. */
  cropmap.height = function (map, css) {
    map.getContainer().style.height = css;
    map.invalidateSize();
  };

  /* Fit ``bounds`` now (clear of the legends), and again when the map enters or leaves full screen, and
   * when the window is resized unless the user has moved the map. With ``store`` (the map's key and
   * bounds), the user's view is kept in the browser tab and restored when the map is built anew with
   * the same bounds. */
  cropmap.fitOnFullscreen = function (map, bounds, store) {
    var b = L.latLngBounds(bounds), timer = null, ours = false, moved = false, saved = null, target = null;
    // Leaflet's own resize handling keeps the centre and zoom; this one refits the region
    L.DomEvent.off(window, 'resize', map._onResize, map);
    function room() {
      // a margin round the region (its outline lay on the map's edge, its foot under the attribution
      // line), and the legends in the lower right corner, which lay over the region's corner: the
      // region is fitted above them or left of them, whichever shows it larger
      var tl = L.point(10, 10), br = L.point(10, 24);
      // the zoom, full-screen and drawing buttons down the left edge: a wide region's west end lay under
      // them (and a rectangle could not be drawn from there); it is fitted right of them
      var tools = map.getContainer().querySelector('.leaflet-top.leaflet-left');
      if (tools && tools.offsetWidth && tools.offsetWidth < map.getSize().x / 4) {
        tl = L.point(tools.offsetWidth + 6, 10);
      }
      var box = map.getContainer().querySelector('.leaflet-bottom.leaflet-right .cropmap-fades');
      if (box && box.offsetWidth) {  // (from the map's edges: the attribution line is under the legends)
        var r = box.getBoundingClientRect(), c = map.getContainer().getBoundingClientRect();
        var below = L.point(br.x, Math.max(br.y, c.bottom - r.top + 6)),
          beside = L.point(Math.max(br.x, c.right - r.left + 6), br.y);
        br = map.getBoundsZoom(b, false, tl.add(below)) >= map.getBoundsZoom(b, false, tl.add(beside)) ? below : beside;
        var s = map.getSize();  // (legends taller or wider than half the map: over them, not beside them)
        if (tl.x + br.x > s.x / 2 || tl.y + br.y > s.y / 2) { br = L.point(10, 24); }
      }
      return {paddingTopLeft: tl, paddingBottomRight: br};
    }
    function fitted() {
      if (!target) { return false; }
      var c = map.latLngToContainerPoint(target.centre), s = map.getSize();
      return Math.abs(map.getZoom() - target.zoom) < 1e-6 && Math.abs(c.x - s.x / 2) < 3 &&
        Math.abs(c.y - s.y / 2) < 3;
    }
    function quietly(f) { ours = true; try { f(); } finally { ours = false; } }
    function fit() {
      // not before the page has laid the map's frame out (its window then has no height, and the
      // legends' place gave a margin wider than the map: one frame at the deepest zoom); the frame's
      // resize that follows fits it
      if (!window.innerWidth || !window.innerHeight) { return; }
      quietly(function () {
        shown();
        map.invalidateSize();
        map.fitBounds(b, L.extend({animate: false}, room()));
        target = {centre: map.getCenter(), zoom: map.getZoom()};
      });
      moved = false;
    }
    if (store) {
      try { saved = JSON.parse(window.sessionStorage.getItem('cropmap-view:' + store) || 'null'); } catch (e) {}
    }
    // hidden until first fitted (its first frames showed the map's starting view, then jumped)
    var box = map.getContainer(), hidden = !saved;
    function shown() { if (hidden) { hidden = false; box.style.visibility = ''; } }
    if (hidden) { box.style.visibility = 'hidden'; setTimeout(shown, 3000); }
    if (saved) {
      moved = true;
      quietly(function () { map.setView([saved.lat, saved.lng], saved.zoom, {animate: false}); });
    } else {
      fit();
    }
    map.on('moveend', function () {
      if (!ours) { moved = !fitted(); }
      if (!store) { return; }
      try {
        var c = map.getCenter();
        window.sessionStorage.setItem('cropmap-view:' + store,
          JSON.stringify(moved ? {lat: c.lat, lng: c.lng, zoom: map.getZoom()} : null));
      } catch (e) {}
    });
    map.on('enterFullscreen exitFullscreen', function () { setTimeout(fit, 250); });
    window.addEventListener('resize', function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (!moved) { fit(); } else { quietly(function () { map.invalidateSize(); }); }
      }, 200);
    });
  };

  /* Sets the legend title of the dynamic layer ``key`` (e.g. the crop layer's threshold) and its
   * colours' opacity, in place; kept for a legend drawn later. */
  cropmap.dynamicTitle = function (key, title, opacity) {
    titles[key] = title;
    opacities[key] = opacity;
    cropmap.legends(document);
  };

  /* A note at the bottom left when the first tile of ``layer`` fails to load (no internet). */
  cropmap.tilesFailed = function (map, layer, text) {
    layer.once('tileerror', function () {
      var said = map._cropmapTilesFailed = map._cropmapTilesFailed || {};
      if (said[text]) { return; }  // once for the layers that share it (Earth Engine's four)
      said[text] = true;
      cropmap.note(map, text, 'bottomleft', false).getContainer().classList.add('cropmap-tiles-failed');
    });
  };

  /* The mouse wheel scrolls the page, not the map, until the map is clicked (and again once the
   * pointer leaves it); a wheel turned over the map meanwhile shows ``text`` for a moment. In full
   * screen the wheel zooms at once. */
  cropmap.wheelAfterClick = function (map, text) {
    var box = map.getContainer(), hint = null, timer = null;
    map.scrollWheelZoom.disable();
    // Leaflet focuses the map on a press (for its keys), and focusing scrolls the page to show the whole
    // map: on a laptop the page moved between the press and the release, and a click read another pixel
    box.focus = function () { HTMLElement.prototype.focus.call(box, {preventScroll: true}); };
    function on() {
      map.scrollWheelZoom.enable();
      if (hint) { hint.style.display = 'none'; }
    }
    map.on('mousedown click enterFullscreen', on);
    map.on('mouseout exitFullscreen', function () {
      if (!map._isFullscreen) { map.scrollWheelZoom.disable(); }
    });
    box.addEventListener('wheel', function () {
      if (map.scrollWheelZoom.enabled()) { return; }
      if (!hint) {
        hint = L.DomUtil.create('div', 'cropmap-wheel-hint', box);
        hint.textContent = text;
      }
      hint.style.display = 'block';
      clearTimeout(timer);
      timer = setTimeout(function () { hint.style.display = 'none'; }, 1500);
    }, {passive: true});
  };

  /* Marks the place clicked inside ``bounds`` (a ring; on an image map, ``image``, also the clicked
   * pixel's outline) and shows in a box inside the map what the page read there (see readout), ``hint``
   * before a click, ``pending`` until the reading comes, and ``outside`` after a click off ``bounds``. The box
   * is at the top right unless it would cover the place clicked: then at the top left or the bottom left. */
  cropmap.clickMarker = function (map, bounds, image, hint, pending, outside) {
    var b = L.latLngBounds(bounds), mark = null, at = null, div = null, missed = false;
    var box = L.control({position: 'topright'});
    box.onAdd = function () {
      if (div) { return div; }
      div = L.DomUtil.create('div', 'cropmap-note cropmap-readout');
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      return div;
    };
    box.addTo(map);
    // no wider than the map leaves beside the buttons down its left edge (26em, map.css, on a narrow map
    // lay over the zoom buttons, the + hidden under the hint)
    function fit() { div.style.maxWidth = 'min(26em, ' + Math.max(96, map.getSize().x - 84) + 'px)'; }  // (its padding besides)
    fit();
    map.on('resize', fit);
    status(map);  // (there before the first reading: a live region made with its text is often not read)
    function covers() {
      var p = map.latLngToContainerPoint(at), r = div.getBoundingClientRect(),
        m = map.getContainer().getBoundingClientRect();
      return p.x > r.left - m.left - 14 && p.x < r.right - m.left + 14 && p.y > r.top - m.top - 14 &&
        p.y < r.bottom - m.top + 14;
    }
    function place() {
      var corners = at ? ['topright', 'topleft', 'bottomleft'] : ['topright'];
      for (var i = 0; i < corners.length; i++) {
        if (box.getPosition() !== corners[i]) { box.setPosition(corners[i]); }
        if (!at || !covers()) { return; }
      }
      box.setPosition('topright');
    }
    function show() {
      var r = reading, d = box.getContainer();
      var same = at && r && Math.abs(r[1] - at.lat) < 1e-9 && Math.abs(r[2] - at.lng) < 1e-9;
      d.textContent = same ? r[0] : at ? pending : missed && outside ? outside : hint;
      d.classList.toggle('cropmap-readout-waiting', !same);
      place();
      // read out by a screen reader from a live region that stays put (the box above moves to another
      // corner when it would cover the place clicked, and a live region moved in the page is often not read)
      if (same || (missed && outside)) { status(map).textContent = d.textContent; }
    }
    showReading = show;
    // placed again when the map moves under it: a zoom, a resize, full screen
    map.on('moveend zoomend resize', function () { if (at) { place(); } });
    map.on('click', function (e) {
      if (mark) { map.removeLayer(mark); mark = null; }
      var p = e.latlng;
      at = b.contains(p) ? p : null;
      missed = !at;
      show();
      if (!at) { return; }
      var o = {interactive: false, fill: false, className: 'cropmap-click-mark'}, layers = [];
      if (image) {
        var col = Math.floor(p.lng), row = Math.floor(-p.lat);
        p = L.latLng(-row - 0.5, col + 0.5);
        layers.push(L.rectangle([[-row - 1, col], [-row, col + 1]], L.extend({color: '#ffffff', weight: 1.5}, o)));
      }
      layers.push(L.circleMarker(p, L.extend({radius: 8, color: '#202020', weight: 4, opacity: 0.8}, o)));
      layers.push(L.circleMarker(p, L.extend({radius: 8, color: '#ffffff', weight: 2}, o)));
      mark = L.layerGroup(layers).addTo(map);
    });
    // the keyboard's way: Enter (or Space) on the focused map reads the pixel under the ring at its centre
    // (map.css), as a click there would; the arrows move the map under it, + and - zoom (Leaflet's keys)
    var container = map.getContainer();
    container.classList.add('cropmap-readable');
    container.addEventListener('keydown', function (e) {
      // (not a key held down, a stream of readings, nor one with a modifier, as Leaflet's keys)
      if ((e.key === 'Enter' || e.key === ' ') && e.target === container && !e.repeat && !e.altKey && !e.ctrlKey &&
          !e.metaKey) {
        e.preventDefault();
        map.fire('click', {latlng: map.getCenter(), containerPoint: map.latLngToContainerPoint(map.getCenter()),
          originalEvent: e});
      }
    });
    show();
  };

  /* The map's live region (created once, outside the panes and controls that move): what is said to a
   * screen reader, e.g. the reading of a click. Hidden from sight (map.css's .cropmap-unseen). */
  function status(map) {
    var c = map.getContainer(), el = c.querySelector(':scope > .cropmap-status');
    if (!el) {
      el = L.DomUtil.create('div', 'cropmap-unseen cropmap-status', c);
      el.setAttribute('role', 'status');
      el.setAttribute('aria-live', 'polite');
    }
    return el;
  }

  /* The map's name for a screen reader (``label``, with ``keys``, the keys that work on it): a map
   * region named so, and its frame named so (it was announced as "streamlit_folium.st_folium"). */
  cropmap.label = function (map, label, keys) {
    var c = map.getContainer(), hint = c.querySelector(':scope > .cropmap-keys');
    c.setAttribute('role', 'region');
    c.setAttribute('aria-roledescription', 'map');
    c.setAttribute('aria-label', label);
    if (!hint) {
      hint = L.DomUtil.create('div', 'cropmap-unseen cropmap-keys', c);
      hint.id = 'cropmap-keys';
      c.setAttribute('aria-describedby', hint.id);
    }
    hint.textContent = keys;
    document.title = label;
    try {  // (the frame's own title stays: the page's styles and tests find the map's frame by it)
      if (window.frameElement) { window.frameElement.setAttribute('aria-label', label); }
    } catch (e) { /* a frame of another origin: its name stays the document's title */ }
  };

  /* A button (under the map's buttons) that hides, while it is held, the layers a legend explains (the
   * crop layer, the probability, the labels, the errors: their images carry the class ``cropmap-layer``)
   * and the legends, to see the image under them; back as they were when it is let go. By mouse, touch,
   * or the keyboard (Space or Enter held on the focused button). */
  cropmap.peek = function (map, title) {
    var control = L.control({position: 'topleft'});
    control.onAdd = function () {
      var bar = L.DomUtil.create('div', 'leaflet-bar cropmap-peek');
      var button = L.DomUtil.create('button', 'cropmap-peek-button', bar);
      button.type = 'button';
      button.title = title;
      button.setAttribute('aria-label', title);
      button.innerHTML = '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">' +
        '<path fill="none" stroke="currentColor" stroke-width="2" d="M1 12s4-7 11-7 11 7 11 7-4 7-11 7S1 12 1 12z"/>' +
        '<circle cx="12" cy="12" r="3" fill="currentColor"/></svg>';
      var box = map.getContainer();
      function hide(e) { if (e) { e.preventDefault(); } box.classList.add('cropmap-peeking'); }
      function show() { box.classList.remove('cropmap-peeking'); }
      L.DomEvent.disableClickPropagation(bar);
      button.addEventListener('pointerdown', hide);
      ['pointerup', 'pointerleave', 'pointercancel', 'blur'].forEach(function (n) { button.addEventListener(n, show); });
      button.addEventListener('keydown', function (e) { if (e.key === ' ' || e.key === 'Enter') { hide(e); } });
      button.addEventListener('keyup', function (e) { if (e.key === ' ' || e.key === 'Enter') { show(); } });
      return bar;
    };
    control.addTo(map);
    return control;
  };

  /* The page's reading of a click, [text, lat, lng] or null, for the map's click box: shown while
   * that click is the map's last. */
  cropmap.readout = function (value) {
    reading = value;
    if (showReading) { showReading(); }
  };
})();
