"use strict";(self.rspackChunkphysviz=self.rspackChunkphysviz||[]).push([[232],{475(e,r,o){var t=o(601),i=o.n(t),a=o(314),n=(o.n(a))()(i());n.push([e.id,`.physviz-JobsPanel {
  display: flex;
  flex-direction: column;
  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  font-size: var(--jp-ui-font-size1);
  overflow: auto;
  min-width: 260px;
}
.physviz-header { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; padding: 6px 8px; }
.physviz-header h2 { flex: 1 0 100%; margin: 0; font-size: var(--jp-ui-font-size1); font-weight: 600; text-transform: uppercase; }
.physviz-header button { flex: 1; }
.physviz-filters select { min-width: 0; }
.physviz-detail h4 select { flex: 1; min-width: 0; }
svg.physviz-chart { display: block; max-width: 420px; }
.physviz-actions button[hidden] { display: none; }
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
.physviz-JobsPanel select.jp-mod-styled, .physviz-JobsPanel button.jp-mod-styled {
  font-size: var(--jp-ui-font-size1); height: 24px; line-height: 22px; padding: 0 6px; min-width: 0;
}
.physviz-JobsPanel select.jp-mod-styled { padding-right: 18px; background-position: right 2px center; }
`,""]),o.d(r,{},{A:n})},314(e){e.exports=function(e){var r=[];return r.toString=function(){return this.map(function(r){var o="",t=void 0!==r[5];return r[4]&&(o+="@supports (".concat(r[4],") {")),r[2]&&(o+="@media ".concat(r[2]," {")),t&&(o+="@layer".concat(r[5].length>0?" ".concat(r[5]):""," {")),o+=e(r),t&&(o+="}"),r[2]&&(o+="}"),r[4]&&(o+="}"),o}).join("")},r.i=function(e,o,t,i,a){"string"==typeof e&&(e=[[null,e,void 0]]);var n={};if(t)for(var p=0;p<this.length;p++){var s=this[p][0];null!=s&&(n[s]=!0)}for(var l=0;l<e.length;l++){var c=[].concat(e[l]);t&&n[c[0]]||(void 0!==a&&(void 0===c[5]||(c[1]="@layer".concat(c[5].length>0?" ".concat(c[5]):""," {").concat(c[1],"}")),c[5]=a),o&&(c[2]&&(c[1]="@media ".concat(c[2]," {").concat(c[1],"}")),c[2]=o),i&&(c[4]?(c[1]="@supports (".concat(c[4],") {").concat(c[1],"}"),c[4]=i):c[4]="".concat(i)),r.push(c))}},r}},601(e){e.exports=function(e){return e[1]}},72(e){var r=[];function o(e){for(var o=-1,t=0;t<r.length;t++)if(r[t].identifier===e){o=t;break}return o}function t(e,t){for(var i={},a=[],n=0;n<e.length;n++){var p=e[n],s=t.base?p[0]+t.base:p[0],l=i[s]||0,c="".concat(s," ").concat(l);i[s]=l+1;var d=o(c),v={css:p[1],media:p[2],sourceMap:p[3],supports:p[4],layer:p[5]};if(-1!==d)r[d].references++,r[d].updater(v);else{var h=function(e,r){var o=r.domAPI(r);return o.update(e),function(r){r?(r.css!==e.css||r.media!==e.media||r.sourceMap!==e.sourceMap||r.supports!==e.supports||r.layer!==e.layer)&&o.update(e=r):o.remove()}}(v,t);t.byIndex=n,r.splice(n,0,{identifier:c,updater:h,references:1})}a.push(c)}return a}e.exports=function(e,i){var a=t(e=e||[],i=i||{});return function(e){e=e||[];for(var n=0;n<a.length;n++){var p=o(a[n]);r[p].references--}for(var s=t(e,i),l=0;l<a.length;l++){var c=o(a[l]);0===r[c].references&&(r[c].updater(),r.splice(c,1))}a=s}}},659(e){var r={};e.exports=function(e,o){var t=function(e){if(void 0===r[e]){var o=document.querySelector(e);if(window.HTMLIFrameElement&&o instanceof window.HTMLIFrameElement)try{o=o.contentDocument.head}catch(e){o=null}r[e]=o}return r[e]}(e);if(!t)throw Error("Couldn't find a style target. This probably means that the value for the 'insert' parameter is invalid.");t.appendChild(o)}},540(e){e.exports=function(e){var r=document.createElement("style");return e.setAttributes(r,e.attributes),e.insert(r,e.options),r}},56(e,r,o){e.exports=function(e){var r=o.nc;r&&e.setAttribute("nonce",r)}},206(e){e.exports=function(e){if("u"<typeof document)return{update:function(){},remove:function(){}};var r=e.insertStyleElement(e);return{update:function(o){var t,i,a;t="",o.supports&&(t+="@supports (".concat(o.supports,") {")),o.media&&(t+="@media ".concat(o.media," {")),(i=void 0!==o.layer)&&(t+="@layer".concat(o.layer.length>0?" ".concat(o.layer):""," {")),t+=o.css,i&&(t+="}"),o.media&&(t+="}"),o.supports&&(t+="}"),(a=o.sourceMap)&&"u">typeof btoa&&(t+="\n/*# sourceMappingURL=data:application/json;base64,".concat(btoa(unescape(encodeURIComponent(JSON.stringify(a))))," */")),e.styleTagTransform(t,r,e.options)},remove:function(){var e;null===(e=r).parentNode||e.parentNode.removeChild(e)}}}},113(e){e.exports=function(e,r){if(r.styleSheet)r.styleSheet.cssText=e;else{for(;r.firstChild;)r.removeChild(r.firstChild);r.appendChild(document.createTextNode(e))}}},579(e,r,o){var t=o(72),i=o.n(t),a=o(206),n=o.n(a),p=o(659),s=o.n(p),l=o(56),c=o.n(l),d=o(540),v=o.n(d),h=o(113),u=o.n(h),f=o(475),y={};y.styleTagTransform=u(),y.setAttributes=c(),y.insert=s().bind(null,"head"),y.domAPI=n(),y.insertStyleElement=v(),i()(f.A,y),f.A&&f.A.locals&&f.A.locals}}]);