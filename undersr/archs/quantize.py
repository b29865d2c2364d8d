"""Vector quantiser with an exponential-moving-average codebook, shared by the VQ-VAE models.

The codebook is not learned by gradient descent: each code moves towards the running mean of the encoder
outputs assigned to it (van den Oord et al. 2017, appendix A.1; Razavi et al. 2019, §3.1). The encoder is
trained through the straight-through estimator and the commitment loss returned here.
"""
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

# Rows of latent vectors whose distances are computed at once; bounds the (rows, num_embeddings) matrix.
_CHUNK_ROWS = 1 << 16


class EMAQuantizer(nn.Module):
    """Maps every latent vector to its nearest codebook entry; the codebook follows an EMA of its assignments.

    The state lives in buffers, not parameters, so an optimiser never touches it and it is saved in
    ``state_dict``:

    - ``codebook`` (K, D): the code vectors.
    - ``cluster_size`` (K,): EMA of how many vectors each code received.
    - ``embed_sum`` (K, D): EMA of the sum of the vectors each code received.
    - ``initialized`` (): whether the data-dependent initialisation has run.

    ``codebook == embed_sum / cluster_size`` (after Laplace smoothing) is kept as an invariant. Both EMAs start
    at one assignment of the initial code to itself, so an unused code keeps its value instead of being divided
    by a zero count.

    With ``data_init`` the first training step replaces the N(0, 1) codebook by randomly chosen encoder outputs
    of that batch (as in VideoGPT and Jukebox). Without it, an untrained encoder's outputs, which vary very little
    across positions, all fall on the one code nearest to them and training often never leaves that state.

    Args:
        num_embeddings (int): Codebook size K.
        embedding_dim (int): Code vector length D; the channel count of the latent.
        decay (float): EMA decay (0.99 in van den Oord et al. 2017 and Razavi et al. 2019).
        eps (float): Laplace smoothing of the cluster sizes.
        data_init (bool): Initialise the codebook from the first training batch (see above).
    """

    def __init__(self, num_embeddings=512, embedding_dim=64, decay=0.99, eps=1e-5, data_init=True):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.decay = decay
        self.eps = eps
        self.data_init = data_init
        codebook = torch.randn(num_embeddings, embedding_dim)
        self.register_buffer('codebook', codebook)
        self.register_buffer('cluster_size', torch.ones(num_embeddings))
        self.register_buffer('embed_sum', codebook.clone())
        self.register_buffer('initialized', torch.tensor(not data_init, dtype=torch.uint8))

    def extra_repr(self):
        return (f'num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}, decay={self.decay}, '
                f'data_init={self.data_init}')

    def nearest(self, flat):
        """Indices of the nearest codes, by ``||z||^2 - 2 z.e + ||e||^2`` in float32.

        Args:
            flat (Tensor): (M, D) latent vectors.

        Returns:
            Tensor: (M,) long indices into the codebook.
        """
        with torch.autocast(device_type=flat.device.type, enabled=False):
            flat = flat.float()
            codebook = self.codebook.float()
            code_sq = codebook.pow(2).sum(1)
            indices = []
            for rows in flat.split(_CHUNK_ROWS):
                dist_sq = torch.addmm(rows.pow(2).sum(1, keepdim=True) + code_sq, rows, codebook.t(), alpha=-2)
                indices.append(dist_sq.argmin(1))
        return torch.cat(indices) if indices else flat.new_zeros(0, dtype=torch.long)

    @torch.no_grad()
    def init_codebook(self, flat):
        """Sets the codebook to randomly chosen latent vectors (the same on every ``torch.distributed`` replica).

        Args:
            flat (Tensor): (M, D) latent vectors (float32); drawn with replacement when M < K.
        """
        m = flat.shape[0]
        if m >= self.num_embeddings:
            rows = torch.randperm(m, device=flat.device)[:self.num_embeddings]
        else:
            rows = torch.randint(m, (self.num_embeddings,), device=flat.device)
        codebook = flat[rows].contiguous()
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(codebook, src=0)
        self.codebook.copy_(codebook)
        self.embed_sum.copy_(codebook)
        self.cluster_size.fill_(1)
        self.initialized.fill_(1)

    @torch.no_grad()
    def update_codebook(self, flat, indices):
        """One EMA step of the codebook towards the mean of the vectors assigned to each code.

        Under ``torch.distributed`` the counts and sums are summed over all replicas first, so every replica
        applies the same update and the codebooks stay identical.

        Args:
            flat (Tensor): (M, D) latent vectors (float32).
            indices (Tensor): (M,) their code indices.
        """
        counts = torch.bincount(indices, minlength=self.num_embeddings).to(torch.float32)
        sums = torch.zeros(self.num_embeddings, self.embedding_dim, device=flat.device, dtype=torch.float32)
        sums.index_add_(0, indices, flat)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        cluster_size = self.cluster_size.float().mul_(self.decay).add_(counts, alpha=1 - self.decay)
        embed_sum = self.embed_sum.float().mul_(self.decay).add_(sums, alpha=1 - self.decay)
        # Laplace smoothing (van den Oord et al. 2017, appendix A.1): no code's count reaches zero.
        total = cluster_size.sum()
        smoothed = (cluster_size + self.eps) / (total + self.num_embeddings * self.eps) * total
        self.cluster_size.copy_(cluster_size)
        self.embed_sum.copy_(embed_sum)
        self.codebook.copy_(embed_sum / smoothed.unsqueeze(1))

    def forward(self, z, update=None):
        """Quantises a latent map.

        Args:
            z (Tensor): (N, D, H, W) encoder output.
            update (bool | None): Whether to take an EMA step of the codebook; ``None`` means ``self.training``.

        Returns:
            tuple[Tensor, Tensor, Tensor]:
                - z_q (N, D, H, W): quantised latent, dtype of ``z``; its gradient passes straight to ``z``.
                - commit_loss (): float32 ``mean((z - sg[z_q])^2)``, the commitment loss without its weight.
                - indices (N, H, W): long code indices.
        """
        n, d, h, w = z.shape
        if d != self.embedding_dim:
            raise ValueError(f'EMAQuantizer: expected {self.embedding_dim} channels, got {d}')
        if update is None:
            update = self.training
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat = z.detach().permute(0, 2, 3, 1).reshape(-1, d).float()
            if update and not self.initialized:
                self.init_codebook(flat)
            indices = self.nearest(flat)
            # Codes from before the EMA step, so z_q and the commitment loss match the assignment.
            z_q = F.embedding(indices, self.codebook.float()).view(n, h, w, d).permute(0, 3, 1, 2)
            if update:
                self.update_codebook(flat, indices)
            commit_loss = F.mse_loss(z.float(), z_q.detach())
        # Straight-through estimator (van den Oord et al. 2017, §3.2): forward uses z_q, backward copies dL/dz_q.
        z_q = z + (z_q.to(z.dtype) - z).detach()
        return z_q, commit_loss, indices.view(n, h, w)
