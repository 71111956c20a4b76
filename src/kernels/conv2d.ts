/**
 * conv2d on WebGPU, forward and data gradient: the public entry (launchers, kernel variants and the
 * choice per shape and adapter), with the CPU references they are tested against.
 * Forward: conv2d_forward.ts; data gradient: conv2d_data_grad.ts; references: conv2d_ref.ts.
 */
export {
  CONV2D_FORWARD_VARIANTS,
  chooseConv2dForwardVariant,
  conv2dForward,
  conv2dVariantApplies,
  isCpuAdapter,
  type Conv2dForwardVariant,
} from './conv2d_forward.ts';
export {
  CONV2D_BACKWARD_DATA_VARIANTS,
  chooseConv2dBackwardDataVariant,
  conv2dBackwardData,
  type Conv2dBackwardDataVariant,
} from './conv2d_data_grad.ts';
export { conv2dBackwardDataRef, conv2dForwardRef } from './conv2d_ref.ts';
export { conv2dFlops, conv2dOutputSize, validateConv2dShape, type Conv2dShape } from './conv2d_shape.ts';
