"use strict";(self.rspackChunk_aistudio_lab=self.rspackChunk_aistudio_lab||[]).push([[232],{475(t,e,a){var o=a(601),r=a.n(o),i=a(933),n=(a.n(i))()(r());n.push([t.id,`.aistudio-Datasets {
  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  font-size: var(--jp-ui-font-size1);
  display: flex;
  flex-direction: column;
  padding: 8px;
}
/* the lists scroll under the header; the next page loads near their end (src/datasets/panel.ts) */
.aistudio-Datasets-body { flex: 1 1 auto; overflow: auto; min-height: 0; }
.aistudio-Datasets-header input { width: 100%; margin: 2px 0; box-sizing: border-box; }
.aistudio-Datasets-header h2 { font-size: var(--jp-ui-font-size2); margin: 4px 0; }
.aistudio-Datasets-list { list-style: none; padding: 0; margin: 0; }
.aistudio-Datasets-item { padding: 4px 0; border-bottom: 1px solid var(--jp-border-color2); }
.aistudio-Datasets-meta, .aistudio-Datasets-status, .aistudio-Datasets-empty { color: var(--jp-ui-font-color2); }
.aistudio-Datasets-error { color: var(--jp-error-color1); }
.aistudio-Datasets-more { margin: 4px 0; }
.aistudio-Datasets-more[hidden] { display: none; }  /* .jp-Button sets display */
.aistudio-Datasets-hint {
  background: var(--jp-warn-color3);
  border-left: 3px solid var(--jp-warn-color1);
  padding: 4px 8px;
  margin: 4px 0;
  display: flex;
  flex-wrap: wrap;
  gap: 6px;
  align-items: center;
}

/* one dataset in the main area (src/datasets/detail.ts) */
.aistudio-DatasetView {
  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  font-size: var(--jp-ui-font-size1);
  overflow: auto;
  padding: 12px 20px;
}
.aistudio-DatasetView h2 { font-size: var(--jp-ui-font-size3); margin: 4px 0; }
.aistudio-DatasetView h3 { font-size: var(--jp-ui-font-size2); margin: 16px 0 4px; }
.aistudio-DatasetView-facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; }
.aistudio-DatasetView-facts dt { font-weight: bold; }
.aistudio-DatasetView-facts dd { margin: 0; }
.aistudio-DatasetView-grid {
  overflow: auto;
  max-height: 360px;
  border: 1px solid var(--jp-border-color2);
}
.aistudio-DatasetView-table { border-collapse: collapse; font-family: var(--jp-code-font-family); }
.aistudio-DatasetView-table th, .aistudio-DatasetView-table td {
  border: 1px solid var(--jp-border-color2);
  padding: 2px 6px;
  white-space: nowrap;
}
.aistudio-DatasetView-grid th { position: sticky; top: 0; background: var(--jp-layout-color2); }
.aistudio-DatasetView-snippet pre {
  background: var(--jp-layout-color2);
  padding: 6px;
  white-space: pre-wrap;
  margin: 2px 0;
}
.aistudio-DatasetView-actions { display: flex; gap: 6px; margin-bottom: 8px; }

/* the run time in the status bar (src/runtime/statusbar.ts): a warning style below the largest warning point */
.aistudio-Runtime { padding: 0 6px; white-space: nowrap; }
.aistudio-Runtime.aistudio-Runtime-warning {
  background: var(--jp-warn-color1);
  color: var(--jp-ui-inverse-font-color0);
  font-weight: bold;
}
`,""]),a.d(e,{},{A:n})},933(t){t.exports=function(t){var e=[];return e.toString=function(){return this.map(function(e){var a="",o=void 0!==e[5];return e[4]&&(a+="@supports (".concat(e[4],") {")),e[2]&&(a+="@media ".concat(e[2]," {")),o&&(a+="@layer".concat(e[5].length>0?" ".concat(e[5]):""," {")),a+=t(e),o&&(a+="}"),e[2]&&(a+="}"),e[4]&&(a+="}"),a}).join("")},e.i=function(t,a,o,r,i){"string"==typeof t&&(t=[[null,t,void 0]]);var n={};if(o)for(var s=0;s<this.length;s++){var p=this[s][0];null!=p&&(n[p]=!0)}for(var d=0;d<t.length;d++){var u=[].concat(t[d]);o&&n[u[0]]||(void 0!==i&&(void 0===u[5]||(u[1]="@layer".concat(u[5].length>0?" ".concat(u[5]):""," {").concat(u[1],"}")),u[5]=i),a&&(u[2]&&(u[1]="@media ".concat(u[2]," {").concat(u[1],"}")),u[2]=a),r&&(u[4]?(u[1]="@supports (".concat(u[4],") {").concat(u[1],"}"),u[4]=r):u[4]="".concat(r)),e.push(u))}},e}},601(t){t.exports=function(t){return t[1]}},72(t){var e=[];function a(t){for(var a=-1,o=0;o<e.length;o++)if(e[o].identifier===t){a=o;break}return a}function o(t,o){for(var r={},i=[],n=0;n<t.length;n++){var s=t[n],p=o.base?s[0]+o.base:s[0],d=r[p]||0,u="".concat(p," ").concat(d);r[p]=d+1;var c=a(u),l={css:s[1],media:s[2],sourceMap:s[3],supports:s[4],layer:s[5]};if(-1!==c)e[c].references++,e[c].updater(l);else{var f=function(t,e){var a=e.domAPI(e);return a.update(t),function(e){e?(e.css!==t.css||e.media!==t.media||e.sourceMap!==t.sourceMap||e.supports!==t.supports||e.layer!==t.layer)&&a.update(t=e):a.remove()}}(l,o);o.byIndex=n,e.splice(n,0,{identifier:u,updater:f,references:1})}i.push(u)}return i}t.exports=function(t,r){var i=o(t=t||[],r=r||{});return function(t){t=t||[];for(var n=0;n<i.length;n++){var s=a(i[n]);e[s].references--}for(var p=o(t,r),d=0;d<i.length;d++){var u=a(i[d]);0===e[u].references&&(e[u].updater(),e.splice(u,1))}i=p}}},659(t){var e={};t.exports=function(t,a){var o=function(t){if(void 0===e[t]){var a=document.querySelector(t);if(window.HTMLIFrameElement&&a instanceof window.HTMLIFrameElement)try{a=a.contentDocument.head}catch(t){a=null}e[t]=a}return e[t]}(t);if(!o)throw Error("Couldn't find a style target. This probably means that the value for the 'insert' parameter is invalid.");o.appendChild(a)}},540(t){t.exports=function(t){var e=document.createElement("style");return t.setAttributes(e,t.attributes),t.insert(e,t.options),e}},56(t,e,a){t.exports=function(t){var e=a.nc;e&&t.setAttribute("nonce",e)}},825(t){t.exports=function(t){if("u"<typeof document)return{update:function(){},remove:function(){}};var e=t.insertStyleElement(t);return{update:function(a){var o,r,i;o="",a.supports&&(o+="@supports (".concat(a.supports,") {")),a.media&&(o+="@media ".concat(a.media," {")),(r=void 0!==a.layer)&&(o+="@layer".concat(a.layer.length>0?" ".concat(a.layer):""," {")),o+=a.css,r&&(o+="}"),a.media&&(o+="}"),a.supports&&(o+="}"),(i=a.sourceMap)&&"u">typeof btoa&&(o+="\n/*# sourceMappingURL=data:application/json;base64,".concat(btoa(unescape(encodeURIComponent(JSON.stringify(i))))," */")),t.styleTagTransform(o,e,t.options)},remove:function(){var t;null===(t=e).parentNode||t.parentNode.removeChild(t)}}}},113(t){t.exports=function(t,e){if(e.styleSheet)e.styleSheet.cssText=t;else{for(;e.firstChild;)e.removeChild(e.firstChild);e.appendChild(document.createTextNode(t))}}},579(t,e,a){var o=a(72),r=a.n(o),i=a(825),n=a.n(i),s=a(659),p=a.n(s),d=a(56),u=a.n(d),c=a(540),l=a.n(c),f=a(113),v=a.n(f),m=a(475),h={};h.styleTagTransform=v(),h.setAttributes=u(),h.insert=p().bind(null,"head"),h.domAPI=n(),h.insertStyleElement=l(),r()(m.A,h),m.A&&m.A.locals&&m.A.locals}}]);