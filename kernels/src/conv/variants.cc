// The convolution's variant tables, generated from variants.inc. ISA-neutral (baseline
// flags): it only takes the addresses of the per-ISA kernels.
#include <type_traits>

#include "fastdl/conv.h"
#include "fastdl/conv_backward.h"
#include "winograd.h"

// Declarations from the contracts' function types (fastdl/conv.h).
#define FDL_CONV_VARIANT(sfx, isa) std::remove_pointer_t<fdl::ConvDirectFn> fdl_f32_conv__##sfx;
#define FDL_DEPTHWISE_VARIANT(sfx, isa) \
  std::remove_pointer_t<fdl::DepthwisePlaneFn> fdl_f32_depthwise__##sfx;
#define FDL_DEPTHWISE_CHANNELS_VARIANT(sfx, isa, channels) \
  std::remove_pointer_t<fdl::DepthwiseChannelsFn> fdl_f32_depthwise_channels__##sfx;
#define FDL_WINOGRAD_VARIANT(sfx, isa)                                  \
  extern const fdl::WinogradTransforms fdl_f32_winograd_m2__##sfx;      \
  extern const fdl::WinogradTransforms fdl_f32_winograd_m4__##sfx;
#define FDL_COL2IM_VARIANT(sfx, isa) std::remove_pointer_t<fdl::Col2imFn> fdl_f32_col2im__##sfx;
#define FDL_NARROW_VARIANT(sfx, isa) std::remove_pointer_t<fdl::NarrowConvFn> fdl_f32_narrow__##sfx;
#define FDL_DEPTHWISE_BACKWARD_VARIANT(sfx, isa)                                           \
  std::remove_pointer_t<fdl::DepthwiseWeightGradFn> fdl_f32_depthwise_weight_grad__##sfx; \
  std::remove_pointer_t<fdl::DepthwiseInputGradFn> fdl_f32_depthwise_input_grad__##sfx;
#define FDL_SHIFTED_DOTS_VARIANT(sfx, isa) \
  std::remove_pointer_t<fdl::ShiftedDotsFn> fdl_f32_shifted_dots__##sfx;
#define FDL_IMPLICIT_GEMM_VARIANT(sfx, isa, mr) \
  std::remove_pointer_t<fdl::ImplicitGemmFn> fdl_f32_implicit_gemm__##sfx;
#include "variants.inc"

namespace fdl {

const std::vector<ConvVariant>& conv_variants() {
  static const std::vector<ConvVariant> table = {
#define FDL_CONV_VARIANT(sfx, isa) {"fdl_f32_conv__" #sfx, Isa::isa, &fdl_f32_conv__##sfx},
#include "variants.inc"
  };
  return table;
}

const std::vector<DepthwiseVariant>& depthwise_variants() {
  static const std::vector<DepthwiseVariant> table = {
#define FDL_DEPTHWISE_VARIANT(sfx, isa) \
  {"fdl_f32_depthwise__" #sfx, Isa::isa, &fdl_f32_depthwise__##sfx},
#include "variants.inc"
  };
  return table;
}

const std::vector<DepthwiseChannelsVariant>& depthwise_channels_variants() {
  static const std::vector<DepthwiseChannelsVariant> table = {
#define FDL_DEPTHWISE_CHANNELS_VARIANT(sfx, isa, channels) \
  {"fdl_f32_depthwise_channels__" #sfx, Isa::isa, channels, &fdl_f32_depthwise_channels__##sfx},
#include "variants.inc"
  };
  return table;
}

const std::vector<WinogradVariant>& winograd_variants() {
  static const std::vector<WinogradVariant> table = {
#define FDL_WINOGRAD_VARIANT(sfx, isa) \
  {"fdl_f32_winograd__" #sfx, Isa::isa, &fdl_f32_winograd_m2__##sfx, &fdl_f32_winograd_m4__##sfx},
#include "variants.inc"
  };
  return table;
}

const std::vector<Col2imVariant>& col2im_variants() {
  static const std::vector<Col2imVariant> table = {
#define FDL_COL2IM_VARIANT(sfx, isa) {"fdl_f32_col2im__" #sfx, Isa::isa, &fdl_f32_col2im__##sfx},
#include "variants.inc"
  };
  return table;
}

const std::vector<NarrowVariant>& narrow_variants() {
  static const std::vector<NarrowVariant> table = {
#define FDL_NARROW_VARIANT(sfx, isa) {"fdl_f32_narrow__" #sfx, Isa::isa, &fdl_f32_narrow__##sfx},
#include "variants.inc"
  };
  return table;
}

const std::vector<ImplicitGemmVariant>& implicit_gemm_variants() {
  static const std::vector<ImplicitGemmVariant> table = {
#define FDL_IMPLICIT_GEMM_VARIANT(sfx, isa, mr) \
  {"fdl_f32_implicit_gemm__" #sfx, Isa::isa, mr, &fdl_f32_implicit_gemm__##sfx},
#include "variants.inc"
  };
  return table;
}

const std::vector<DepthwiseBackwardVariant>& depthwise_backward_variants() {
  static const std::vector<DepthwiseBackwardVariant> table = {
#define FDL_DEPTHWISE_BACKWARD_VARIANT(sfx, isa)                                       \
  {"fdl_f32_depthwise_backward__" #sfx, Isa::isa, &fdl_f32_depthwise_weight_grad__##sfx, \
   &fdl_f32_depthwise_input_grad__##sfx},
#include "variants.inc"
  };
  return table;
}

const std::vector<ShiftedDotsVariant>& shifted_dots_variants() {
  static const std::vector<ShiftedDotsVariant> table = {
#define FDL_SHIFTED_DOTS_VARIANT(sfx, isa) \
  {"fdl_f32_shifted_dots__" #sfx, Isa::isa, &fdl_f32_shifted_dots__##sfx},
#include "variants.inc"
  };
  return table;
}

}  // namespace fdl
