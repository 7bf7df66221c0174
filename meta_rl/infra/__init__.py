"""Infrastructure: atomic files and safetensors I/O, job runners (processes, Ray), argument
checks, divergence guards, and the one factory of Stable-Baselines3 models."""
