output "trigger_name" {
  description = "The Eventarc trigger whose subscription got the dead-letter and retry policy."
  value       = var.trigger_name
  depends_on  = [terraform_data.dead_letter_policy]
}
