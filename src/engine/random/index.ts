// Seeded noise identical to torch.Generator("cpu").manual_seed(seed) + torch.randn / torch.rand.
export { TorchGenerator, numel, type Shape } from './torch-generator.ts';
