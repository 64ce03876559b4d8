"use strict";(self.rspackChunkphysviz=self.rspackChunkphysviz||[]).push([[232],{475(r,e,o){var t=o(601),i=o.n(t),a=o(314),n=(o.n(a))()(i());n.push([r.id,`.physviz-JobsPanel {
  display: flex;
  flex-direction: column;
  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  font-size: var(--jp-ui-font-size1);
  overflow: auto;
  min-width: 260px;
}
.physviz-header { display: flex; align-items: center; gap: 6px; padding: 6px 8px; }
.physviz-header h2 { flex: 1; margin: 0; font-size: var(--jp-ui-font-size2); font-weight: 600; text-transform: uppercase; }
.physviz-filters { display: flex; gap: 6px; padding: 0 8px 6px; }
.physviz-filters select { flex: 1; }
.physviz-message, .physviz-job-error { color: var(--jp-error-color1); padding: 0 8px; white-space: pre-wrap; }
ul.physviz-jobs { list-style: none; margin: 0; padding: 0; border-top: var(--jp-border-width) solid var(--jp-border-color2); }
li.physviz-job { padding: 5px 8px; border-bottom: var(--jp-border-width) solid var(--jp-border-color2); cursor: pointer;
  display: flex; flex-wrap: wrap; align-items: center; gap: 4px; }
li.physviz-job:hover { background: var(--jp-layout-color2); }
li.physviz-job.jp-mod-selected { background: var(--jp-brand-color3); }
li.physviz-empty { padding: 8px; color: var(--jp-ui-font-color2); }
.physviz-name { flex: 1; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.physviz-meta { width: 100%; display: flex; gap: 8px; color: var(--jp-ui-font-color2); font-size: var(--jp-ui-font-size0); }
.physviz-hosts { flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.physviz-badge { border-radius: 8px; padding: 0 6px; font-size: var(--jp-ui-font-size0); color: white; background: var(--jp-layout-color4); }
.physviz-status-pending { background: var(--jp-warn-color1); }
.physviz-status-running { background: var(--jp-brand-color1); }
.physviz-status-completed { background: var(--jp-success-color1); }
.physviz-status-failed { background: var(--jp-error-color1); }
.physviz-status-cancelled, .physviz-status-unknown { background: var(--jp-layout-color4); }
.physviz-detail { padding: 6px 8px; }
.physviz-detail h3 { margin: 4px 0; font-size: var(--jp-ui-font-size2); word-break: break-all; }
.physviz-detail h4 { margin: 8px 0 4px; display: flex; align-items: center; gap: 6px; }
.physviz-detail-row, .physviz-actions { display: flex; gap: 6px; align-items: center; margin: 4px 0; }
.physviz-detail-id { font-size: var(--jp-ui-font-size0); }
pre.physviz-log { max-height: 220px; overflow: auto; margin: 0; padding: 4px; background: var(--jp-layout-color2);
  font-family: var(--jp-code-font-family); font-size: var(--jp-code-font-size); white-space: pre-wrap; word-break: break-all; }
.physviz-chart-frame { fill: none; stroke: var(--jp-border-color1); }
.physviz-chart-tick, .physviz-chart-empty { fill: var(--jp-ui-font-color2); font-size: 10px; }
.physviz-line { fill: none; stroke-width: 1.6; }
.physviz-train { stroke: #1f77b4; fill: #1f77b4; }
.physviz-valid { stroke: #ff7f0e; fill: #ff7f0e; }
path.physviz-train, path.physviz-valid { fill: none; }
text.physviz-legend { font-size: 10px; stroke: none; }
.physviz-FinetuneForm { overflow: auto; background: var(--jp-layout-color1); color: var(--jp-ui-font-color1); }
.physviz-form { max-width: 760px; padding: 12px 20px; }
.physviz-form fieldset { border: var(--jp-border-width) solid var(--jp-border-color2); margin: 8px 0; padding: 6px 10px; }
.physviz-form fieldset[hidden] { display: none; }
.physviz-row { display: grid; grid-template-columns: 260px 1fr; gap: 2px 10px; margin: 5px 0; align-items: center; }
.physviz-row label { color: var(--jp-ui-font-color1); }
.physviz-control { display: flex; gap: 4px; }
.physviz-control input[type='text'], .physviz-control input[type='number'], .physviz-control select, .physviz-control textarea { flex: 1; }
.physviz-prologue { font-family: var(--jp-code-font-family); }
.physviz-field-error { grid-column: 2; color: var(--jp-error-color1); font-size: var(--jp-ui-font-size0); }
.physviz-field-error:empty { display: none; }
.physviz-row.jp-mod-error input, .physviz-row.jp-mod-error select, .physviz-row.jp-mod-error textarea { border-color: var(--jp-error-color1); }
.physviz-result { margin: 8px 0; }
.physviz-result.physviz-ok { color: var(--jp-success-color1); }
.physviz-result.physviz-refused { color: var(--jp-error-color1); }
`,""]),o.d(e,{},{A:n})},314(r){r.exports=function(r){var e=[];return e.toString=function(){return this.map(function(e){var o="",t=void 0!==e[5];return e[4]&&(o+="@supports (".concat(e[4],") {")),e[2]&&(o+="@media ".concat(e[2]," {")),t&&(o+="@layer".concat(e[5].length>0?" ".concat(e[5]):""," {")),o+=r(e),t&&(o+="}"),e[2]&&(o+="}"),e[4]&&(o+="}"),o}).join("")},e.i=function(r,o,t,i,a){"string"==typeof r&&(r=[[null,r,void 0]]);var n={};if(t)for(var p=0;p<this.length;p++){var s=this[p][0];null!=s&&(n[s]=!0)}for(var l=0;l<r.length;l++){var c=[].concat(r[l]);t&&n[c[0]]||(void 0!==a&&(void 0===c[5]||(c[1]="@layer".concat(c[5].length>0?" ".concat(c[5]):""," {").concat(c[1],"}")),c[5]=a),o&&(c[2]&&(c[1]="@media ".concat(c[2]," {").concat(c[1],"}")),c[2]=o),i&&(c[4]?(c[1]="@supports (".concat(c[4],") {").concat(c[1],"}"),c[4]=i):c[4]="".concat(i)),e.push(c))}},e}},601(r){r.exports=function(r){return r[1]}},72(r){var e=[];function o(r){for(var o=-1,t=0;t<e.length;t++)if(e[t].identifier===r){o=t;break}return o}function t(r,t){for(var i={},a=[],n=0;n<r.length;n++){var p=r[n],s=t.base?p[0]+t.base:p[0],l=i[s]||0,c="".concat(s," ").concat(l);i[s]=l+1;var d=o(c),v={css:p[1],media:p[2],sourceMap:p[3],supports:p[4],layer:p[5]};if(-1!==d)e[d].references++,e[d].updater(v);else{var u=function(r,e){var o=e.domAPI(e);return o.update(r),function(e){e?(e.css!==r.css||e.media!==r.media||e.sourceMap!==r.sourceMap||e.supports!==r.supports||e.layer!==r.layer)&&o.update(r=e):o.remove()}}(v,t);t.byIndex=n,e.splice(n,0,{identifier:c,updater:u,references:1})}a.push(c)}return a}r.exports=function(r,i){var a=t(r=r||[],i=i||{});return function(r){r=r||[];for(var n=0;n<a.length;n++){var p=o(a[n]);e[p].references--}for(var s=t(r,i),l=0;l<a.length;l++){var c=o(a[l]);0===e[c].references&&(e[c].updater(),e.splice(c,1))}a=s}}},659(r){var e={};r.exports=function(r,o){var t=function(r){if(void 0===e[r]){var o=document.querySelector(r);if(window.HTMLIFrameElement&&o instanceof window.HTMLIFrameElement)try{o=o.contentDocument.head}catch(r){o=null}e[r]=o}return e[r]}(r);if(!t)throw Error("Couldn't find a style target. This probably means that the value for the 'insert' parameter is invalid.");t.appendChild(o)}},540(r){r.exports=function(r){var e=document.createElement("style");return r.setAttributes(e,r.attributes),r.insert(e,r.options),e}},56(r,e,o){r.exports=function(r){var e=o.nc;e&&r.setAttribute("nonce",e)}},206(r){r.exports=function(r){if("u"<typeof document)return{update:function(){},remove:function(){}};var e=r.insertStyleElement(r);return{update:function(o){var t,i,a;t="",o.supports&&(t+="@supports (".concat(o.supports,") {")),o.media&&(t+="@media ".concat(o.media," {")),(i=void 0!==o.layer)&&(t+="@layer".concat(o.layer.length>0?" ".concat(o.layer):""," {")),t+=o.css,i&&(t+="}"),o.media&&(t+="}"),o.supports&&(t+="}"),(a=o.sourceMap)&&"u">typeof btoa&&(t+="\n/*# sourceMappingURL=data:application/json;base64,".concat(btoa(unescape(encodeURIComponent(JSON.stringify(a))))," */")),r.styleTagTransform(t,e,r.options)},remove:function(){var r;null===(r=e).parentNode||r.parentNode.removeChild(r)}}}},113(r){r.exports=function(r,e){if(e.styleSheet)e.styleSheet.cssText=r;else{for(;e.firstChild;)e.removeChild(e.firstChild);e.appendChild(document.createTextNode(r))}}},579(r,e,o){var t=o(72),i=o.n(t),a=o(206),n=o.n(a),p=o(659),s=o.n(p),l=o(56),c=o.n(l),d=o(540),v=o.n(d),u=o(113),f=o.n(u),h=o(475),y={};y.styleTagTransform=f(),y.setAttributes=c(),y.insert=s().bind(null,"head"),y.domAPI=n(),y.insertStyleElement=v(),i()(h.A,y),h.A&&h.A.locals&&h.A.locals}}]);