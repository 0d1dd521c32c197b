"use strict";(self.rspackChunk_aistudio_lab=self.rspackChunk_aistudio_lab||[]).push([[232],{475(t,e,a){var r=a(601),o=a.n(r),n=a(933),i=(a.n(n))()(o());i.push([t.id,`.aistudio-Datasets {
  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  font-size: var(--jp-ui-font-size1);
  overflow: auto;
  padding: 8px;
}
.aistudio-Datasets-header input { width: 100%; margin: 2px 0; box-sizing: border-box; }
.aistudio-Datasets-header h2 { font-size: var(--jp-ui-font-size2); margin: 4px 0; }
.aistudio-Datasets-list { list-style: none; padding: 0; margin: 0; }
.aistudio-Datasets-item { padding: 4px 0; border-bottom: 1px solid var(--jp-border-color2); }
.aistudio-Datasets-meta, .aistudio-Datasets-status, .aistudio-Datasets-empty { color: var(--jp-ui-font-color2); }
.aistudio-Datasets-error { color: var(--jp-error-color1); }
.aistudio-Datasets-facts dt { font-weight: bold; }
.aistudio-Datasets-facts dd { margin: 0 0 4px 0; }
.aistudio-Datasets-scroll { overflow: auto; max-height: 300px; }
.aistudio-Datasets-table { border-collapse: collapse; font-family: var(--jp-code-font-family); }
.aistudio-Datasets-table th, .aistudio-Datasets-table td { border: 1px solid var(--jp-border-color2); padding: 1px 4px; }
.aistudio-Datasets-snippet { background: var(--jp-layout-color2); padding: 4px; white-space: pre-wrap; }

/* the run time in the status bar (src/runtime/statusbar.ts): a warning style below the largest warning point */
.aistudio-Runtime { padding: 0 6px; white-space: nowrap; }
.aistudio-Runtime.aistudio-Runtime-warning {
  background: var(--jp-warn-color1);
  color: var(--jp-ui-inverse-font-color0);
  font-weight: bold;
}
`,""]),a.d(e,{},{A:i})},933(t){t.exports=function(t){var e=[];return e.toString=function(){return this.map(function(e){var a="",r=void 0!==e[5];return e[4]&&(a+="@supports (".concat(e[4],") {")),e[2]&&(a+="@media ".concat(e[2]," {")),r&&(a+="@layer".concat(e[5].length>0?" ".concat(e[5]):""," {")),a+=t(e),r&&(a+="}"),e[2]&&(a+="}"),e[4]&&(a+="}"),a}).join("")},e.i=function(t,a,r,o,n){"string"==typeof t&&(t=[[null,t,void 0]]);var i={};if(r)for(var s=0;s<this.length;s++){var c=this[s][0];null!=c&&(i[c]=!0)}for(var u=0;u<t.length;u++){var d=[].concat(t[u]);r&&i[d[0]]||(void 0!==n&&(void 0===d[5]||(d[1]="@layer".concat(d[5].length>0?" ".concat(d[5]):""," {").concat(d[1],"}")),d[5]=n),a&&(d[2]&&(d[1]="@media ".concat(d[2]," {").concat(d[1],"}")),d[2]=a),o&&(d[4]?(d[1]="@supports (".concat(d[4],") {").concat(d[1],"}"),d[4]=o):d[4]="".concat(o)),e.push(d))}},e}},601(t){t.exports=function(t){return t[1]}},72(t){var e=[];function a(t){for(var a=-1,r=0;r<e.length;r++)if(e[r].identifier===t){a=r;break}return a}function r(t,r){for(var o={},n=[],i=0;i<t.length;i++){var s=t[i],c=r.base?s[0]+r.base:s[0],u=o[c]||0,d="".concat(c," ").concat(u);o[c]=u+1;var p=a(d),l={css:s[1],media:s[2],sourceMap:s[3],supports:s[4],layer:s[5]};if(-1!==p)e[p].references++,e[p].updater(l);else{var f=function(t,e){var a=e.domAPI(e);return a.update(t),function(e){e?(e.css!==t.css||e.media!==t.media||e.sourceMap!==t.sourceMap||e.supports!==t.supports||e.layer!==t.layer)&&a.update(t=e):a.remove()}}(l,r);r.byIndex=i,e.splice(i,0,{identifier:d,updater:f,references:1})}n.push(d)}return n}t.exports=function(t,o){var n=r(t=t||[],o=o||{});return function(t){t=t||[];for(var i=0;i<n.length;i++){var s=a(n[i]);e[s].references--}for(var c=r(t,o),u=0;u<n.length;u++){var d=a(n[u]);0===e[d].references&&(e[d].updater(),e.splice(d,1))}n=c}}},659(t){var e={};t.exports=function(t,a){var r=function(t){if(void 0===e[t]){var a=document.querySelector(t);if(window.HTMLIFrameElement&&a instanceof window.HTMLIFrameElement)try{a=a.contentDocument.head}catch(t){a=null}e[t]=a}return e[t]}(t);if(!r)throw Error("Couldn't find a style target. This probably means that the value for the 'insert' parameter is invalid.");r.appendChild(a)}},540(t){t.exports=function(t){var e=document.createElement("style");return t.setAttributes(e,t.attributes),t.insert(e,t.options),e}},56(t,e,a){t.exports=function(t){var e=a.nc;e&&t.setAttribute("nonce",e)}},825(t){t.exports=function(t){if("u"<typeof document)return{update:function(){},remove:function(){}};var e=t.insertStyleElement(t);return{update:function(a){var r,o,n;r="",a.supports&&(r+="@supports (".concat(a.supports,") {")),a.media&&(r+="@media ".concat(a.media," {")),(o=void 0!==a.layer)&&(r+="@layer".concat(a.layer.length>0?" ".concat(a.layer):""," {")),r+=a.css,o&&(r+="}"),a.media&&(r+="}"),a.supports&&(r+="}"),(n=a.sourceMap)&&"u">typeof btoa&&(r+="\n/*# sourceMappingURL=data:application/json;base64,".concat(btoa(unescape(encodeURIComponent(JSON.stringify(n))))," */")),t.styleTagTransform(r,e,t.options)},remove:function(){var t;null===(t=e).parentNode||t.parentNode.removeChild(t)}}}},113(t){t.exports=function(t,e){if(e.styleSheet)e.styleSheet.cssText=t;else{for(;e.firstChild;)e.removeChild(e.firstChild);e.appendChild(document.createTextNode(t))}}},579(t,e,a){var r=a(72),o=a.n(r),n=a(825),i=a.n(n),s=a(659),c=a.n(s),u=a(56),d=a.n(u),p=a(540),l=a.n(p),f=a(113),v=a.n(f),m=a(475),h={};h.styleTagTransform=v(),h.setAttributes=d(),h.insert=c().bind(null,"head"),h.domAPI=i(),h.insertStyleElement=l(),o()(m.A,h),m.A&&m.A.locals&&m.A.locals}}]);