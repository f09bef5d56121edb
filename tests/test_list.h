// test_list.h: every test the runner knows, one X entry each.
#define TEST_LIST(X)                                   \
    X(test_toolchain_vectorised_stack_loops)           \
    X(test_rng_reproducible_and_saved)                 \
    X(test_adam_matches_formula)                       \
    X(test_adam_clip_and_schedules)                    \
    X(test_adafactor_matches_formula)                  \
    X(test_layernorm_grad)                             \
    X(test_linear_grad)                                \
    X(test_linear_tiles_any_team)                      \
    X(test_gemm_fp32_matches_double)                   \
    X(test_gemm_bf16_within_rounding)                  \
    X(test_ffn_grad_gelu)                              \
    X(test_ffn_grad_relu)                              \
    X(test_ffn_grad_dropout)                           \
    X(test_ffn_chunking_invariant)                     \
    X(test_embedding_grad)                             \
    X(test_lm_head_grad)                               \
    X(test_chunked_attention_grad)                     \
    X(test_chunked_attention_key_scale_is_a_stored_copy) \
    X(test_chunked_attention_backward_any_team)        \
    X(test_exp_approx_accuracy)                        \
    X(test_erf_approx_accuracy)                        \
    X(test_lsh_grad)                                   \
    X(test_lsh_sort_is_stable_bucket_order)            \
    X(test_lsh_streaming_moves_same_bits)              \
    X(test_lsh_equals_full_when_window_covers_sequence) \
    X(test_lsh_approaches_full_with_more_hashes)       \
    X(test_lsh_default_buckets)                        \
    X(test_local_grad)                                 \
    X(test_model_grad_lsh)                             \
    X(test_model_grad_lsh_bidirectional)               \
    X(test_model_grad_local)                           \
    X(test_model_grad_local_bidirectional)             \
    X(test_model_grad_full)                            \
    X(test_model_grad_full_bidirectional)              \
    X(test_model_grad_dropout)                         \
    X(test_kept_activations_match_recompute)           \
    X(test_model_by_sequence_any_team)                 \
    X(test_reversibility_12_layers)                    \
    X(test_reversible_equals_store_everything)         \
    X(test_flop_count_matches_products)                \
    X(test_no_causal_leak)                             \
    X(test_determinism)                                \
    X(test_no_read_before_write)                       \
    X(test_memory_flat_in_depth)                       \
    X(test_decode_local_and_full_equal_recompute)      \
    X(test_decode_forward_len)                         \
    X(test_hf_oracle_local)                            \
    X(test_hf_oracle_lsh_one_hash_two_back)            \
    X(test_hf_oracle_lsh_two_hashes)                   \
    X(test_hf_oracle_lsh_local_gelu)                   \
    X(test_hf_oracle_mixed_factorised_relu)            \
    X(test_hf_oracle_bidirectional_lsh_local)          \
    X(test_hf_oracle_bidirectional_four_hashes)        \
    X(test_hf_oracle_padded_lsh_local)                 \
    X(test_hf_oracle_padded_where_chunks_fit)          \
    X(test_hf_oracle_masked_lm)                        \
    X(test_model_grad_classifier_first)                \
    X(test_model_grad_classifier_mean_dropout)         \
    X(test_model_grad_masked_lm)                       \
    X(test_padding_invisible_classifier)               \
    X(test_padding_invisible_masked_lm)                \
    X(test_mlm_mask_draws)                             \
    X(test_listops_batches)                            \
    X(test_batch_equals_alone)                         \
    X(test_cli_listops_classifier)                     \
    X(test_cli_masked_lm)                              \
    X(test_hf_oracle_sequence_classification)          \
    X(test_hf_oracle_padded_masked_lm)                 \
    X(test_hf_oracle_padded_classifier)                \
    X(test_hf_decode_local_lsh)                        \
    X(test_hf_decode_short_prompt)                     \
    X(test_hf_export_roundtrip)                        \
    X(test_hf_loads_our_export)                        \
    X(test_model_readers_survive_random_damage)        \
    X(test_cli_export_and_eval_hf_dir)                 \
    X(test_archive_formats_and_corruption)             \
    X(test_text_splits_windows_and_uniform_bits)       \
    X(test_imagenet_npz_nested_zip64_and_errors)       \
    X(test_imagenet_pixel_order_and_bits_per_dim)      \
    X(test_imagenet_reads_numpy_archives)              \
    X(test_imagenet_png_tar)                           \
    X(test_readers_survive_random_damage)              \
    X(test_png_decodes_back)                           \
    X(test_cli_imagenet_train_resume_eval_sample)      \
    X(test_cli_flags)                                  \
    X(test_cli_config_errors)                          \
    X(test_cli_train_resume_eval_sample)               \
    X(test_cli_memory_mb)                              \
    X(test_cli_damaged_checkpoints)                    \
    X(test_cli_failed_save_keeps_last_checkpoint)      \
    X(test_cli_disk_full_keeps_last_checkpoint)        \
    X(test_cli_adafactor_resume)                       \
    X(test_cli_interrupt_saves)                        \
    X(test_cli_eval_attention_overrides)               \
    X(test_cli_precision)                              \
    X(test_cli_eval_data_file)                         \
    X(test_cli_axial_from_length)                      \
    X(test_listops_generated_files_agree)              \
    X(test_listops_bad_files)                          \
    X(test_bad_input_hf_config_ranges)                 \
    X(test_bad_input_readers)                          \
    X(test_bad_input_checkpoint_fields)                \
    X(test_bad_input_command_line)                     \
    X(test_bad_input_safetensors_shape)                \
    X(test_bad_input_safetensors_header)               \
    X(test_tensorboard_crc32c_and_records)             \
    X(test_tensorboard_training_run)                   \
    X(test_curves_svg)                                 \
    MPI_TESTS(X)

// Data-parallel training under mpirun: in a build with make MPI=1.
#ifdef REFORMER_MPI
#define MPI_TESTS(X)                                   \
    X(test_mpi_ranks_match_one_process)                \
    X(test_mpi_sharded_optimizer_is_exact)             \
    X(test_mpi_resume)                                 \
    X(test_mpi_missing_data_names_rank)                \
    X(test_mpi_more_ranks_than_sequences)              \
    X(test_mpi_images)
#else
#define MPI_TESTS(X)
#endif

#define DECLARE(name) void name(void);
TEST_LIST(DECLARE)
#undef DECLARE
