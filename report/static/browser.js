// segment-ensemble image browser: layers, opacity, class filter, wrist zoom. Plain JS, no
// libraries; works from file://.
(function () {
  "use strict";
  var viewer = document.getElementById("viewer");
  if (!viewer) { return; }
  var stage = document.getElementById("stage");
  var layers = document.getElementById("layers");
  var H = +viewer.dataset.height, W = +viewer.dataset.width;

  function each(sel, f) { Array.prototype.forEach.call(document.querySelectorAll(sel), f); }

  each("input.layer-toggle", function (box) {
    var apply = function () {
      var layer = document.getElementById("layer-" + box.value);
      if (layer) { layer.classList.toggle("off", !box.checked); }
    };
    box.addEventListener("change", apply);
    apply();
  });

  var opacity = document.getElementById("opacity");
  var opacityValue = document.getElementById("opacity-value");
  function applyOpacity() {
    layers.style.opacity = opacity.value / 100;
    opacityValue.textContent = opacity.value + "%";
  }
  opacity.addEventListener("input", applyOpacity);
  applyOpacity();

  var filter = document.getElementById("class-filter");
  function applyFilter() {
    var v = filter.value;
    each(".layer img", function (img) { img.classList.toggle("cls-off", v !== "all" && img.dataset.cls !== v); });
    each(".side tr[data-cls]", function (tr) { tr.classList.toggle("sel", tr.dataset.cls === v); });
  }
  filter.addEventListener("change", applyFilter);
  each(".side td.cls", function (td) {
    td.addEventListener("click", function () {
      var v = td.parentNode.dataset.cls;
      filter.value = filter.value === v ? "all" : v;
      applyFilter();
    });
  });
  applyFilter();

  var zoom = document.getElementById("zoom");
  function applyZoom() {
    var box = viewer.dataset.wrist ? viewer.dataset.wrist.split(",").map(Number) : null;
    if (!zoom || !zoom.checked || !box) {
      viewer.classList.remove("zoomed");
      stage.style.transform = "";
      return;
    }
    var fw = (box[2] - box[0]) / W, fh = (box[3] - box[1]) / H;
    var s = Math.min(1 / fw, 1 / fh);
    var cx = box[0] / W - (1 / s - fw) / 2, cy = box[1] / H - (1 / s - fh) / 2;
    viewer.classList.add("zoomed");
    stage.style.transform = "scale(" + s + ") translate(" + (-100 * cx) + "%," + (-100 * cy) + "%)";
  }
  if (zoom) { zoom.addEventListener("change", applyZoom); }
  applyZoom();
})();
