// Placeholder so the library has a source until the model runtime files land.
namespace opdev::model {
int model_library_placeholder() { return 0; }
}  // namespace opdev::model
