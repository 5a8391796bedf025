/* SPDX-License-Identifier: MIT */
/*
 * The status page. One self-contained document: the script polls /status.json every second,
 * turns counters into per-second rates and success percentages, and draws one canvas chart per
 * stage (DynamoDB writes, stream -> delivery, delivery -> transform, delivery -> bucket). The
 * latest value of every series is also written as text (data-series elements) so the numbers
 * can be read without looking at pixels.
 *
 * Success rates cover the last interval, like the console's per-period graphs. Delivery to S3
 * is the share of the records that left the buffers which went into data objects rather than
 * the error output: a ratio of cumulative counters would read 100% whatever failed, and 0%
 * while records are between the read and the buffer. The next poll is scheduled when one ends
 * (not on an interval) so a slow answer under load never lets two polls race and a stale
 * document replace a newer one.
 */
#include "server/status.h"

static const char page[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>changepipe</title>\n"
    "<style>body{font:14px system-ui,sans-serif;margin:20px;background:#fafafa;color:#222}"
    "h1{font-size:20px}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));"
    "gap:16px}.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px}"
    ".card h2{font-size:15px;margin:0 0 6px}canvas{width:100%;height:160px}"
    ".v{font-weight:600}.legend span{margin-right:14px}</style></head><body>\n"
    "<h1>changepipe status <small id=\"updated\"></small></h1>\n"
    "<div class=\"grid\" id=\"grid\"></div>\n"
    "<script>\n"
    "const charts={};let prev=null;\n"
    "function card(id,title,series){if(charts[id])return charts[id];"
    "const d=document.createElement('div');d.className='card';d.id='card-'+id;"
    "d.innerHTML='<h2>'+title+'</h2><canvas width=\"900\" height=\"320\"></canvas>"
    "<div class=\"legend\">'+series.map((s,i)=>'<span style=\"color:'+COLORS[i]+'\">'+s+': "
    "<b class=\"v\" data-series=\"'+id+'.'+s+'\">-</b></span>').join('')+'</div>';"
    "document.getElementById('grid').appendChild(d);"
    "charts[id]={el:d,series:series,points:series.map(()=>[])};return charts[id];}\n"
    "const COLORS=['#1f77b4','#2ca02c','#d62728','#9467bd'];\n"
    "function push(id,title,series,values,unit){const c=card(id,title,series);"
    "values.forEach((v,i)=>{c.points[i].push(v);if(c.points[i].length>120)c.points[i].shift();"
    "c.el.querySelector('[data-series=\"'+id+'.'+series[i]+'\"]').textContent="
    "(Math.round(v*100)/100)+(unit[i]||'');});draw(c);}\n"
    "function draw(c){const cv=c.el.querySelector('canvas'),g=cv.getContext('2d');"
    "g.clearRect(0,0,cv.width,cv.height);let max=1;c.points.forEach(p=>p.forEach(v=>{if(v>max)max=v}));"
    "g.strokeStyle='#ccc';g.beginPath();g.moveTo(40,10);g.lineTo(40,300);g.lineTo(890,300);g.stroke();"
    "g.fillStyle='#666';g.font='20px sans-serif';g.fillText(String(Math.round(max)),0,24);"
    "c.points.forEach((p,i)=>{g.strokeStyle=COLORS[i];g.lineWidth=3;g.beginPath();"
    "p.forEach((v,k)=>{const x=40+k*(850/119),y=300-(v/max)*280;k?g.lineTo(x,y):g.moveTo(x,y)});"
    "g.stroke();});}\n"
    "function rate(a,b,dt){return b===undefined||a===undefined?0:Math.max(0,(a-b)/dt);}\n"
    "function pct(ok,total){return total>0?100*ok/total:100;}\n"
    "function op(s,name){return (s.ops||[]).find(o=>o.op===name)||{count:0,errors:0,throttles:0};}\n"
    "async function tick(){let s;try{s=await (await fetch('/status.json',{cache:'no-store'})).json();}"
    "catch(e){return;}\n"
    "document.getElementById('updated').textContent=new Date(s.time_ms).toISOString();\n"
    "if(prev){const dt=(s.time_ms-prev.time_ms)/1000||1;\n"
    "const w=op(s,'dynamodb.BatchWriteItem'),pw=op(prev,'dynamodb.BatchWriteItem');\n"
    "const wr=rate(w.count,pw.count,dt),we=rate(w.errors,pw.errors,dt),wt=rate(w.throttles,pw.throttles,dt);\n"
    "push('writes','DynamoDB BatchWriteItem',['requests/s','success %','throttled/s'],"
    "[wr,pct(wr-we,wr),wt],['','%','']);\n"
    "if(s.table&&prev.table){push('cdc','Table -> Kinesis (change records)',['records/s','relayed/s'],"
    "[rate(s.table.changes,prev.table.changes,dt),rate(s.cdc.appended,prev.cdc.appended,dt)],[]);}\n"
    "(s.delivery||[]).forEach(d=>{const p=(prev.delivery||[]).find(x=>x.name===d.name)||{};\n"
    "const r=rate(d.read,p.read,dt),e=rate(d.errored,p.errored,dt);\n"
    "push('src-'+d.name,'Kinesis -> Firehose '+d.name,['records/s','success %','lag ms'],"
    "[r,pct(r-e,r),d.lag_ms],['','%','']);\n"
    "push('xf-'+d.name,'Firehose -> transform '+d.name,['records/s','success %','retries/s'],"
    "[r,pct(r-e,r),rate(d.retries,p.retries,dt)],['','%','']);\n"
    "const o=rate(d.objects,p.objects,dt),dl=rate(d.delivered,p.delivered,dt);\n"
    "push('s3-'+d.name,'Firehose -> S3 '+d.name,['records/s','objects/s','success %'],"
    "[dl,o,pct(dl,dl+e)],['','','%']);});}\n"
    "prev=s;}\n"
    "async function loop(){try{await tick();}finally{setTimeout(loop,1000);}}\n"
    "loop();\n"
    "</script></body></html>\n";

int cp_status_page(void *ctx, const cp_http_req *req, cp_http_resp *resp)
{
    (void) ctx;
    (void) req;
    cp_http_resp_set(resp, 200, "text/html; charset=utf-8", cp_slice_of(page, sizeof(page) - 1));
    return CP_OK;
}
