# syntax=docker/dockerfile:1
# The runtime container of the GPU pool: Python and PyTorch (CUDA), the reference
# runtime and the example GPU actor. Build from the repository root:
#   docker build -f deploy/gpu-runtime.Dockerfile -t wasya-gpu-runtime:latest .
# Any image with python3 and torch works the same with these two files in /app.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
COPY runtimes/python/wasya_runtime.py examples/gpu/embed.py /app/
ENV ASYA_SOCKET_DIR=/var/run/asya \
    ASYA_HANDLER=embed.Embedder.embed \
    ASYA_HANDLER_PATH=/app \
    PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["python3", "/app/wasya_runtime.py"]
