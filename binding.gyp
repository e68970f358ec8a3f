{
  "targets": [
    {
      "target_name": "advml",
      "sources": ["native/allocator.cc", "native/core.cc", "native/ops.cc", "native/autograd.cc", "native/fused.cc", "native/distributed.cc", "native/jit.cc", "native/jpeg.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node native/torch-config.cjs include)"
      ],
      "libraries": ["<!@(node native/torch-config.cjs libs)", "-ljpeg"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter",
                    "<!@(node native/torch-config.cjs cflags)"]
    }
  ]
}
