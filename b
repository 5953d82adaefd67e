getrandom feature "default"
getrandom feature "default" (*)
getrandom feature "std"
getrandom feature "sys_rng"
getrandom v0.2.17 
getrandom v0.4.3 
getrandom v0.4.3 std,sys_rng
getrandom v0.4.3 std,sys_rng (*)
half feature "alloc"
half feature "default"
half feature "default" (*)
half feature "num-traits"
half feature "std"
half feature "std" (*)
half v2.7.1 alloc,default,num-traits,std
half v2.7.1 alloc,default,num-traits,std (*)
image feature "bmp"
image feature "gif"
image feature "jpeg"
image feature "png"
image feature "webp"
image v0.25.10 bmp,gif,jpeg,png,webp
image v0.25.10 bmp,gif,jpeg,png,webp (*)
image-webp feature "default"
image-webp v0.2.4 
ndarray feature "default"
ndarray feature "default" (*)
ndarray feature "std"
ndarray v0.17.2 default,std
ndarray v0.17.2 default,std (*)
rand feature "alloc"
rand feature "alloc" (*)
rand feature "default"
rand feature "getrandom"
rand feature "std"
rand feature "std" (*)
rand feature "std_rng"
rand feature "std_rng" (*)
rand feature "sys_rng"
rand feature "sys_rng" (*)
rand feature "thread_rng"
rand v0.10.4 alloc,default,std,std_rng,sys_rng,thread_rng
rand v0.10.4 alloc,default,std,std_rng,sys_rng,thread_rng (*)
rand_core feature "default"
rand_core v0.10.1 
rand_distr feature "alloc"
rand_distr feature "default"
rand_distr feature "std"
rand_distr v0.6.0 alloc,default,std
rand_distr v0.6.0 alloc,default,std (*)
reqwest feature "__rustls"
reqwest feature "__rustls-ring"
reqwest feature "__tls"
reqwest feature "blocking"
reqwest feature "rustls-tls"
reqwest feature "rustls-tls-webpki-roots"
reqwest feature "rustls-tls-webpki-roots-no-provider"
reqwest v0.12.28 __rustls,__rustls-ring,__tls,blocking,rustls-tls,rustls-tls-webpki-roots,rustls-tls-webpki-roots-no-provider
reqwest v0.12.28 __rustls,__rustls-ring,__tls,blocking,rustls-tls,rustls-tls-webpki-roots,rustls-tls-webpki-roots-no-provider (*)
serde feature "alloc"
serde feature "alloc" (*)
serde feature "default"
serde feature "default" (*)
serde feature "derive"
serde feature "derive" (*)
serde feature "serde_derive"
serde feature "std"
serde feature "std" (*)
serde v1.0.229 alloc,default,derive,serde_derive,std
serde v1.0.229 alloc,default,derive,serde_derive,std (*)
serde v1.0.229 default,derive,serde_derive,std
serde v1.0.229 default,derive,serde_derive,std (*)
serde_core feature "alloc"
serde_core feature "alloc" (*)
serde_core feature "result"
serde_core feature "std"
serde_core feature "std" (*)
serde_core v1.0.229 alloc,result,std
serde_derive feature "default"
serde_derive feature "default" (*)
serde_derive v1.0.229 (proc-macro) default
serde_json feature "default"
serde_json feature "default" (*)
serde_json feature "float_roundtrip"
serde_json feature "std"
serde_json v1.0.154 default,float_roundtrip,std
serde_json v1.0.154 default,float_roundtrip,std (*)
serde_spanned feature "alloc"
serde_spanned feature "alloc" (*)
serde_spanned feature "serde"
serde_spanned feature "std"
serde_spanned v1.1.3 alloc,serde,std
serde_spanned v1.1.3 alloc,serde,std (*)
serde_urlencoded feature "default"
serde_urlencoded v0.7.1 
tokio feature "bytes"
tokio feature "default"
tokio feature "default" (*)
tokio feature "io-util"
tokio feature "libc"
tokio feature "mio"
tokio feature "net"
tokio feature "net" (*)
tokio feature "rt"
tokio feature "socket2"
tokio feature "sync"
tokio feature "sync" (*)
tokio feature "time"
tokio feature "time" (*)
tokio v1.54.1 bytes,default,io-util,libc,mio,net,rt,socket2,sync,time
tokio v1.54.1 bytes,default,io-util,libc,mio,net,rt,socket2,sync,time (*)
tokio-rustls feature "ring"
tokio-rustls feature "tls12"
tokio-rustls feature "tls12" (*)
tokio-rustls v0.26.6 ring,tls12
tokio-rustls v0.26.6 ring,tls12 (*)
tract-core feature "default"
tract-core feature "default" (*)
tract-core v0.23.9 default
tract-data feature "default"
tract-data feature "default" (*)
tract-data v0.23.9 
tract-extra v0.23.9 
tract-extra v0.23.9  (*)
tract-hir feature "default"
tract-hir v0.23.9 
tract-linalg feature "default"
tract-linalg v0.23.9 default
tract-nnef v0.23.9 
tract-nnef v0.23.9  (*)
tract-onnx v0.23.9 
tract-onnx-opl feature "default"
tract-onnx-opl v0.23.9 default
zune-core feature "default"
zune-core feature "std"
zune-core v0.5.3 std
zune-jpeg feature "default"
zune-jpeg feature "neon"
zune-jpeg feature "std"
zune-jpeg feature "x86"
zune-jpeg v0.5.15 default,neon,std,x86
zune-jpeg v0.5.15 default,neon,std,x86 (*)
