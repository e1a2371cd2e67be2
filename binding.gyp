{
  "targets": [
    {
      "target_name": "graft",
      "sources": ["<!@(node -e \"console.log(require('fs').readdirSync('native').filter(f=>f.endsWith('.cpp')).map(f=>'native/'+f).join(' '))\")"],
      "cflags!": ["-fno-exceptions", "-O2", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++14", "-std=gnu++17", "-fno-rtti"],
      "cflags": ["-O3", "-fno-math-errno", "-fno-trapping-math", "-pthread"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-pthread"],
      "ldflags": ["-pthread"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
