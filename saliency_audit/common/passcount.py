"""The audit's deterministic cost figure: images passed forward through any model in this process.

Here, below the models, so that the GPU probe (:mod:`saliency_audit.common.gpus`) can leave it as it found it
without importing the model wrapper that counts (:class:`saliency_audit.models.wrapper.AuditModel`)."""

#: Images passed forward through any AuditModel in this process (a pass over a batch of 8 counts 8): the
#: audit's deterministic cost figure, recorded per result as ``details["image_passes"]``.
PASSES = {"images": 0}
